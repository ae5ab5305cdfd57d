"""AUTOMATIC1111's listings and options under /sdapi/v1: what dropdowns and start-up checks read.

Each answers in A1111's shape; where sdedge has nothing of a kind (VAEs, embeddings, hypernetworks,
face restorers, styles, scripts, extensions, latent upscalers) the list is empty, so every `webuiapi`
getter and every UI that fills a menu from these routes works.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, ConfigDict, RootModel

from sdedge import generation_extras, lora_listing
from sdedge.auth import caller
from sdedge.openapi_spec import documented
from sdedge.routes.http_input import json_body
from sdedge.samplers import SAMPLERS
from sdedge.services import services

bp = Blueprint("a1111_listings", __name__, url_prefix="/sdapi/v1")


class Sampler(BaseModel):
    """One sampler in A1111's listing."""

    name: str
    aliases: list[str]
    options: dict[str, str]


class Scheduler(BaseModel):
    """One noise schedule in A1111's listing."""

    name: str
    label: str
    aliases: list[str] | None = None
    default_rho: float = -1
    need_inner_model: bool = False


class SdModel(BaseModel):
    """One checkpoint in A1111's listing."""

    title: str
    model_name: str
    hash: str | None = None
    sha256: str | None = None
    filename: str
    config: str | None = None


class Options(BaseModel):
    """The A1111 options we have; POST accepts any and applies sd_model_checkpoint (the new default model)."""

    model_config = ConfigDict(extra="allow")

    sd_model_checkpoint: str | None = None
    sd_checkpoint_hash: str | None = None
    samples_format: str = "png"
    sd_vae: str = "Automatic"
    CLIP_stop_at_last_layers: int = 1


class Scripts(BaseModel):
    """Installed scripts: none."""

    txt2img: list[str]
    img2img: list[str]


SamplerList = RootModel[list[Sampler]]
SchedulerList = RootModel[list[Scheduler]]
SdModelList = RootModel[list[SdModel]]
EmptyList = RootModel[list[dict[str, Any]]]
Empty = RootModel[dict[str, Any]]
Null = RootModel[None]

class Embeddings(BaseModel):
    """Textual-inversion embeddings: none loaded, none skipped."""

    loaded: dict[str, Any]
    skipped: dict[str, Any]


class RamUsage(BaseModel):
    """Memory in bytes, as A1111 reports it."""

    free: float
    used: float
    total: float


class Memory(BaseModel):
    """GET /memory: the machine's RAM and this process's share; no CUDA here."""

    ram: RamUsage
    cuda: dict[str, Any]


# -- listings and options -----------------------------------------------------------------------
@bp.get("/samplers")
@documented(responses={200: SamplerList})
def samplers() -> Response:
    """Our samplers under their A1111 names."""
    items = [Sampler(name=s.a1111_name, aliases=[s.name, *s.aliases],
                     options={"scheduler": s.genai_type, **({"note": s.note} if s.note else {})})
             for s in SAMPLERS.values()]
    return jsonify([item.model_dump() for item in items])


@bp.get("/schedulers")
@documented(responses={200: SchedulerList})
def schedulers() -> Response:
    """Noise schedules: only the model's own (A1111's 'Automatic')."""
    return jsonify([Scheduler(name="automatic", label="Automatic").model_dump()])


@bp.get("/sd-models")
@documented(responses={200: SdModelList})
def sd_models() -> Response:
    """The installed models, the default first (title = model id; "id [hash]" is accepted too)."""
    library = services().loader.library
    # installed ones only: a client's model menu must not start a 17 GB download (GET /models lists the rest)
    models = sorted((m for m in library.models() if m.installed), key=lambda m: not m.is_default)
    return jsonify([SdModel(title=library.title(m), model_name=m.id, hash=library.model_hash(m),
                            filename=str(m.folder)).model_dump() for m in models])


@bp.get("/options")
@documented(responses={200: Options})
def get_options() -> Response:
    """The A1111 options we have; sd_model_checkpoint is the default model's title."""
    library = services().loader.library
    default = library.get(library.default_id())
    return jsonify(Options(sd_model_checkpoint=library.title(default),
                           sd_checkpoint_hash=library.model_hash(default)).model_dump())


@bp.post("/options")
@documented(request=Options, responses={200: Null})
def set_options() -> Response:
    """Accept options; sd_model_checkpoint (id, name or title of one of /sd-models) becomes the default model."""
    wanted = json_body().get("sd_model_checkpoint")
    if wanted is not None:
        services().models.set_default(str(wanted), caller())  # admins only, once accounts exist
    return jsonify(None)


@bp.post("/refresh-checkpoints")
@documented(responses={200: Null})
def refresh_checkpoints() -> Response:
    """Nothing to rescan: the server runs its one configured model."""
    return jsonify(None)


class Lora(BaseModel):
    """One LoRA in A1111's listing, plus the family it fits."""

    model_config = ConfigDict(extra="allow")

    name: str
    alias: str
    path: str
    metadata: dict[str, Any]


LoraList = RootModel[list[Lora]]


@bp.get("/loras")
@documented(responses={200: LoraList})
def loras() -> Response:
    """The LoRA files in LORA_DIR in A1111's shape (name, alias, path, metadata), with the family each fits."""
    svc = services()
    return jsonify(lora_listing.a1111_loras(svc.settings, generation_extras.listed_model(svc.loader).folder))


@bp.post("/refresh-loras")
@documented(responses={200: Null})
def refresh_loras() -> Response:
    """Nothing to rescan: LORA_DIR is read at every listing and request."""
    return jsonify(None)


# Listings of things this server does not have (A1111's names): each answers an empty list.
EMPTY_LISTINGS = ("upscalers", "latent-upscale-modes", "sd-vae", "sd-modules", "hypernetworks",
                  "face-restorers", "realesrgan-models", "prompt-styles", "script-info", "extensions",
                  "artist-categories", "artists")


@documented(responses={200: EmptyList})
def empty_listing() -> Response:
    """Nothing of this kind on this server (no upscalers, VAEs, hypernetworks, styles, scripts...): []."""
    return jsonify([])


for _name in EMPTY_LISTINGS:
    bp.add_url_rule(f"/{_name}", f"empty_{_name.replace('-', '_')}", empty_listing, methods=["GET"])


@bp.get("/embeddings")
@documented(responses={200: Embeddings})
def embeddings() -> Response:
    """No textual-inversion embeddings."""
    return jsonify(Embeddings(loaded={}, skipped={}).model_dump())


@bp.get("/cmd-flags")
@documented(responses={200: Empty})
def cmd_flags() -> Response:
    """A1111's command-line flags that describe this server (API on, where it listens, no WebUI extras)."""
    settings = services().settings
    return jsonify({"api": True, "nowebui": False, "listen": settings.host not in ("127.0.0.1", "localhost", "::1"),
                    "port": settings.port, "api_auth": None, "use_cpu": [], "device_id": settings.openvino_device,
                    "skip_torch_cuda_test": True, "no_half": False, "lowvram": False, "medvram": False})


@bp.get("/memory")
@documented(responses={200: Memory})
def memory() -> Response:
    """RAM of the machine and what this process uses; no CUDA device (OpenVINO runs the model)."""
    total, free = _machine_ram()
    ram = RamUsage(free=free, used=_process_rss() or total - free, total=total)
    return jsonify(Memory(ram=ram, cuda={"error": "no CUDA: this server runs on OpenVINO"}).model_dump())


def _machine_ram() -> tuple[float, float]:
    """(total, available) bytes from sysconf, 0 where the platform does not say."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return float(page * os.sysconf("SC_PHYS_PAGES")), float(page * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0.0, 0.0


def _process_rss() -> float | None:
    """This process's resident memory in bytes (Linux), else None."""
    try:
        with open("/proc/self/statm") as handle:
            return float(int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return None


@bp.get("/scripts")
@documented(responses={200: Scripts})
def scripts() -> Response:
    """No scripts (webuiapi asks at start-up)."""
    return jsonify(Scripts(txt2img=[], img2img=[]).model_dump())
