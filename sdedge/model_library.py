"""The model library: every model the server offers, and which one a request means.

Models come from three places: the built-in catalog of hub repos (sdedge/catalog.py), every
OpenVINO model folder directly under MODELS_DIR, and STABLE_DIFFUSION_REPO_ID (the default model,
which `POST /sdapi/v1/options {"sd_model_checkpoint"}` may change; the choice is kept in
DATA_DIR/default_model.json). A folder's family is read from its model_index.json
(`sdedge.families.detect_family`), never from its name; a catalog repo not downloaded yet shows the
family its catalog entry declares until it is.

Defaults: the default model runs with the DEFAULT_* settings; every other model with its catalog
entry's recommended settings, else its family's (read from its configs).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdedge import model_files
from sdedge.catalog import CATALOG, CATALOG_BY_ID, CatalogEntry, model_id_for
from sdedge.config import Settings, looks_like_local_path
from sdedge.errors import InvalidRequest, detail
from sdedge.families import FAMILIES, Family, Mode as FamilyMode, UnsupportedModel, detect_family

log = logging.getLogger(__name__)

_FLOW_SAMPLER = "FLOW_MATCH_EULER_DISCRETE"
# genai scheduler type -> our sampler name (sdedge.samplers); flow-matching models run their own ("auto")
_SAMPLER_FOR_TYPE = {"PNDM": "pndm", "EULER_DISCRETE": "euler", "EULER_ANCESTRAL_DISCRETE": "euler_a", "DDIM": "ddim",
                     "LCM": "lcm", "LMS_DISCRETE": "ddim", _FLOW_SAMPLER: "auto"}
DEFAULT_FILE = "default_model.json"

# Extra fields for each model's /models entry, e.g. presets: `library.extras.append(lambda m: {"presets":
# presets_for(m.family_id)})` (sdedge/presets.py on the `lora` branch). Each returns a dict merged in.
ModelExtra = Callable[["ModelEntry"], dict[str, Any]]


@dataclass
class ModelEntry:
    """One model the server offers."""

    id: str
    name: str
    description: str
    source: str  # "catalog" (a hub repo), "local" (a folder under MODELS_DIR) or "configured" (the repo id setting)
    repo_id: str | None  # the hub repo, when it comes from one
    folder: Path  # where it is, or will be once downloaded
    installed: bool
    family: Family | None  # read from the folder; None until a catalog repo is downloaded
    catalog: CatalogEntry | None = None
    is_default: bool = False
    problem: str | None = None  # why an installed-looking folder cannot be used

    @property
    def family_id(self) -> str | None:
        """The family's API value, from the folder, else the catalog's declaration."""
        if self.family is not None:
            return self.family.id.value
        return self.catalog.family.value if self.catalog else None

    @property
    def family_info(self) -> Family | None:
        """The folder's family, else the catalog's declared family's typical facts."""
        if self.family is not None:
            return self.family
        return FAMILIES[self.catalog.family] if self.catalog else None

    def modes(self) -> list[str]:
        """The sdedge modes (modes.Mode values) this model can run."""
        family = self.family_info
        if family is None:
            return ["text2img", "img2img", "inpaint", "style-transfer"]
        names = [m.value for m in (FamilyMode.TEXT2IMG, FamilyMode.IMG2IMG, FamilyMode.INPAINT) if m in family.modes]
        # style transfer mixes VAE latents and decodes them: only the 4-channel UNet families are checked
        if FamilyMode.IMG2IMG in family.modes and family.latent_channels == 4:
            names.append("style-transfer")
        return names

    def mode_problem(self, mode: str) -> str | None:
        """Why this model cannot run mode (None: it can)."""
        if mode in self.modes():
            return None
        kind = self.family_info.name if self.family_info else "this model"
        return f"{self.name} ({kind}) cannot run {mode}; it runs {', '.join(self.modes())}"

    def defaults(self, settings: Settings) -> dict[str, Any]:
        """Size, steps, guidance and sampler a request for this model gets when it gives none."""
        if self.is_default or self.family_info is None:
            return {"size": settings.default_size, "steps": settings.default_steps,
                    "guidance": settings.default_guidance_scale, "sampler": settings.default_sampler}
        family = self.family_info
        rec = self.catalog.recommended if self.catalog else None
        size = (rec.size if rec and rec.size else family.default_size)
        size = max(settings.min_size, min(size, settings.max_width, settings.max_height))
        size -= size % max(8, family.size_multiple)
        return {"size": size,
                "steps": min(settings.max_steps, rec.steps if rec and rec.steps else family.default_steps),
                "guidance": rec.guidance if rec and rec.guidance is not None else family.default_guidance,
                "sampler": (rec.sampler if rec and rec.sampler else _SAMPLER_FOR_TYPE.get(family.sampler, "auto"))}

    @property
    def negative_prompt(self) -> bool:
        """Whether the family takes a negative prompt at all."""
        family = self.family_info
        return True if family is None else family.negative_prompt

    @property
    def flow_matching(self) -> bool:
        """Flow-matching families run their own scheduler only (the sampler choice applies to UNet families)."""
        family = self.family_info
        return family is not None and family.samplers == (_FLOW_SAMPLER,)


class ModelLibrary:
    """The catalog, MODELS_DIR and the configured model, resolved to ModelEntry values."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.extras: list[ModelExtra] = []  # more fields per model in /models (presets: see ModelExtra)
        self._hashes: dict[tuple[str, float], str] = {}
        self._default_file = settings.data_dir / DEFAULT_FILE
        self._default_id: str | None = self._read_default()

    # -- listing -------------------------------------------------------------------------------
    def models(self) -> list[ModelEntry]:
        """Every model offered: the configured one first, then MODELS_DIR's folders, then the catalog."""
        found: dict[str, ModelEntry] = {}
        configured = self._configured()
        found[configured.id] = configured
        for entry in self._local_folders():
            found.setdefault(entry.id, entry)
        for cat in CATALOG:
            found.setdefault(cat.id, self._from_catalog(cat))
        default_id = self.default_id(found)
        for entry in found.values():
            entry.is_default = entry.id == default_id
        return list(found.values())

    def ids(self) -> list[str]:
        """The ids of every model offered."""
        return [entry.id for entry in self.models()]

    def default_id(self, found: dict[str, ModelEntry] | None = None) -> str:
        """The default model's id: the one chosen through the A1111 options, else STABLE_DIFFUSION_REPO_ID's."""
        known = found if found is not None else {e.id: e for e in self._all_without_default()}
        if self._default_id and self._default_id in known:
            return self._default_id
        return self._configured().id

    def get(self, model_id: str) -> ModelEntry:
        """The model with this id, or a 400 naming the available ones."""
        for entry in self.models():
            if entry.id == model_id:
                return entry
        raise self.unknown(model_id)

    def resolve(self, name: str | None, field: str = "model") -> ModelEntry:
        """The model a request names by id, name, repo id, folder or A1111 title ("name [hash]"); None,
        empty and OpenAI's "dall-e-*" names mean the default model."""
        models = self.models()
        wanted = (name or "").strip()
        if not wanted or wanted.lower().startswith("dall-e"):
            return next(e for e in models if e.is_default)
        bare = wanted.split(" [")[0].strip() if wanted.endswith("]") else wanted
        default = next(e for e in models if e.is_default)
        for entry in models:
            if entry.catalog and bare.lower() in entry.catalog.aliases:
                # a generic name (seed 002's "stable-diffusion-v1.5") for a model not downloaded: the default
                # model serves it when it is of the same family
                same = default.family_id == entry.catalog.family.value
                return entry if entry.installed or not same else default
            spellings = {entry.id, entry.name.lower(), str(entry.folder).lower(), (entry.repo_id or "").lower(),
                         self.title(entry).lower()}
            if wanted.lower() in spellings or bare.lower() in spellings or model_id_for(bare) == entry.id:
                return entry
        raise self.unknown(wanted, field)

    def unknown(self, name: str, field: str = "model") -> InvalidRequest:
        """The 400 for a model we do not offer, listing the ones we do."""
        available = self.ids()
        message = f"unknown model {name!r}; available: {', '.join(available)}"
        return InvalidRequest(message, detail(field, message, "enum", available=available))

    def set_default(self, entry: ModelEntry) -> None:
        """Make entry the default model (A1111's sd_model_checkpoint), kept across restarts."""
        self._default_id = entry.id
        self._default_file.parent.mkdir(parents=True, exist_ok=True)
        self._default_file.write_text(json.dumps({"model": entry.id}) + "\n", encoding="utf-8")

    # -- facts ---------------------------------------------------------------------------------
    def model_hash(self, entry: ModelEntry) -> str | None:
        """A short, stable fingerprint for the infotext's "Model hash" (A1111 writes 10 hex digits).

        Hashing gigabytes of weights per listing would take minutes, so it covers model_index.json,
        the denoiser's config and IR graph, and the size of its weights file.
        """
        if not entry.installed:
            return None
        parts = [entry.folder / "model_index.json"]
        for sub in ("unet", "transformer"):
            parts += [entry.folder / sub / "config.json", entry.folder / sub / "openvino_model.xml"]
        stamp = max((p.stat().st_mtime for p in parts if p.is_file()), default=0.0)
        key = (str(entry.folder), stamp)
        if key not in self._hashes:
            digest = hashlib.sha256()
            for path in parts:
                if path.is_file():
                    digest.update(path.name.encode() + path.read_bytes())
            for sub in ("unet", "transformer"):
                weights = entry.folder / sub / "openvino_model.bin"
                if weights.is_file():
                    digest.update(str(weights.stat().st_size).encode())
            self._hashes[key] = digest.hexdigest()[:10]
        return self._hashes[key]

    def name_and_hash(self, model_id: str | None) -> tuple[str, str | None]:
        """A job's model id (None: the default) and its hash, for the result and the infotext."""
        name = model_id or self.default_id()
        entry = next((m for m in self.models() if m.id == name), None)
        return name, self.model_hash(entry) if entry else None

    def fused(self, model_id: str | None) -> list[tuple[str, float]]:
        """The LoRAs fused into a job's model (sdedge_fused.json), as (name, weight), for the infotext."""
        from sdedge.lora_fuse import fused_loras

        name = model_id or self.default_id()
        entry = next((m for m in self.models() if m.id == name), None)
        if entry is None or not entry.installed:
            return []
        return [(item["name"], float(item["weight"] or 0.0)) for item in fused_loras(entry.folder)]

    def title(self, entry: ModelEntry) -> str:
        """A1111's checkpoint title: the id (the hash is a field of its own; "id [hash]" is accepted too)."""
        return entry.id

    def settings_for(self, entry: ModelEntry) -> Settings:
        """The settings with this model's defaults in DEFAULT_*: request defaults then follow the model."""
        d = entry.defaults(self.settings)
        return self.settings.model_copy(update={"default_size": d["size"], "default_steps": d["steps"],
                                                "default_guidance_scale": d["guidance"], "default_sampler": d["sampler"]})

    def hub_settings(self, entry: ModelEntry) -> Settings:
        """The settings model_files needs to find or download this model (its repo id in place of the default's)."""
        target = entry.repo_id or str(entry.folder)
        return self.settings.model_copy(update={"stable_diffusion_repo_id": target})

    # -- building entries ----------------------------------------------------------------------
    def _all_without_default(self) -> list[ModelEntry]:
        return [self._configured(), *self._local_folders(), *(self._from_catalog(c) for c in CATALOG)]

    def _configured(self) -> ModelEntry:
        repo = self.settings.stable_diffusion_repo_id
        local = looks_like_local_path(repo)
        folder = Path(repo) if local else model_files.hub_model_dir(self.settings)
        cat = None if local else CATALOG_BY_ID.get(model_id_for(repo))
        installed = model_files.resolve_model(self.settings) is not None
        entry = ModelEntry(model_id_for(repo), cat.name if cat else model_id_for(repo),
                           cat.description if cat else "the configured model (STABLE_DIFFUSION_REPO_ID)",
                           "configured", None if local else repo, folder, installed, None, cat)
        return self._with_family(entry)

    def _local_folders(self) -> list[ModelEntry]:
        root = self.settings.models_dir
        if not root.is_dir():
            return []
        entries = []
        for folder in sorted(p for p in root.iterdir() if (p / "model_index.json").is_file()):
            entry = ModelEntry(model_id_for(folder.name), folder.name, f"local model folder {folder}", "local", None,
                               folder, not model_files.missing_files(folder), None)
            entries.append(self._with_family(entry))
        return entries

    def _from_catalog(self, cat: CatalogEntry) -> ModelEntry:
        hub = self.settings.model_copy(update={"stable_diffusion_repo_id": cat.repo_id})
        folder = model_files.hub_model_dir(hub)
        entry = ModelEntry(cat.id, cat.name, cat.description, "catalog", cat.repo_id, folder,
                           model_files.resolve_model(hub) is not None, None, cat)
        return self._with_family(entry)

    def _with_family(self, entry: ModelEntry) -> ModelEntry:
        if (entry.folder / "model_index.json").is_file():
            try:
                entry.family = detect_family(entry.folder)
            except UnsupportedModel as exc:
                entry.problem, entry.installed = str(exc), False
        return entry

    def _read_default(self) -> str | None:
        try:
            value = json.loads(self._default_file.read_text(encoding="utf-8")).get("model")
        except (OSError, ValueError, AttributeError):
            return None
        return str(value) if value else None
