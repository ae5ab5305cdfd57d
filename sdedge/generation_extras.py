"""The LoRAs, preset and decoder of one request, resolved against LORA_DIR and the job's model.

`resolve(request, settings, model)` runs at submission (and in `sdedge generate`), against the model the
job will run on (`JobModel.of` the library entry the request names, not the default model): the prompt's
`<lora:name:weight>` tags and the `loras` field merged (a name given twice adds up, as in A1111), the
preset's LoRA added unless the request names it, every file found inside LORA_DIR, read and checked
against the model's family and widths, the decoder checked to be installed for that model. Problems are
400s naming the LoRA and the model (404 for a LoRA that is not in LORA_DIR), before anything is queued.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sdedge.config import Settings
from sdedge.engine.params import LoraWeight
from sdedge.engine.lora_state import lora_file
from sdedge.errors import InvalidRequest, detail, map_exceptions
from sdedge.families import Family, UnsupportedModel, detect_family
from sdedge.foreign_errors import LORA_ERRORS
from sdedge.loras import LoraSyntaxError, check_fits, inspect_lora, model_arch, parse_prompt, short_hash
from sdedge.model_library import ModelEntry
from sdedge.presets import Preset, PresetUnavailable, choose, tiny_decoder_installed

TINY_MISSING = ("the tiny decoder is not installed for {model}: run `sdedge convert {folder} "
                "--tiny-autoencoder` (or `--from-ir` to download a published OpenVINO export), then restart")


@dataclass(frozen=True)
class JobModel:
    """The model a job runs on, as the checks read it: its id, its folder once installed, its family."""

    id: str | None
    folder: Path | None  # None until the model is on disk (a catalog model fetched for its job)
    family: Family | None

    @classmethod
    def of(cls, entry: ModelEntry) -> JobModel:
        """A library model: its folder's family, else (not downloaded yet) the catalog's declared one."""
        return cls(entry.id, entry.folder if entry.installed else None, entry.family_info)

    @classmethod
    def at(cls, folder: Path | None, model_id: str | None = None) -> JobModel:
        """A model folder (sdedge generate's model), family read from it."""
        return cls(model_id, Path(folder) if folder else None, family_of(folder))

    @property
    def label(self) -> str:
        """How messages name it."""
        return f"model {self.id}" if self.id else "the model"


@dataclass(frozen=True)
class Extras:
    """What a request's LoRAs, preset and decoder resolved to."""

    loras: tuple[LoraWeight, ...]
    preset: Preset | None
    decoder: str | None  # None: a remote engine's own


def family_of(model_dir: Path | None) -> Family | None:
    """The model's family, or None when its folder is not known (yet) or not a diffusers layout."""
    if model_dir is None:
        return None
    try:
        return detect_family(Path(model_dir))
    except UnsupportedModel:
        return None


def resolve(request: Any, settings: Settings, model: JobModel) -> Extras:
    """Resolve request.preset, the LoRAs (tags and request.loras) and request.decoder against model
    (raises 400/404)."""
    preset = _preset(request.preset, settings, model) if request.preset else None
    loras = _loras(request.prompt, list(request.loras or ()), preset, settings, model)
    tiny_here = tiny_decoder_installed(model.folder)
    decoder = request.decoder or (preset.decoder if preset else None) or \
        ("tiny" if settings.fast_decoder and tiny_here else "full")
    if decoder == "tiny" and not tiny_here and not settings.use_mocks:
        message = TINY_MISSING.format(model=model.label, folder=model.folder or "MODEL_FOLDER")
        raise InvalidRequest(message, detail("decoder", message, "not_installed", model=model.id))
    return Extras(loras, preset, decoder)


def listed_model(loader: Any, name: str | None = None) -> JobModel:
    """The model a listing (/loras, /presets) describes: the one named (400 naming the available ones for an
    unknown name), else the default, as A1111's options left it."""
    return JobModel.of(loader.library.resolve(name))


def for_job(request: Any, settings: Settings, entry: ModelEntry | None) -> Extras:
    """resolve() against the library model the job runs on; entry None (a remote engine's job): for_remote()."""
    return for_remote(request) if entry is None else resolve(request, settings, JobModel.of(entry))


def for_remote(request: Any) -> Extras:
    """A job for a remote engine: its prompt (with any <lora:...> tags) goes there as it is; the native
    `loras`, `preset` and `decoder` fields describe this server's own model, so they are refused."""
    named = [name for name in ("loras", "preset", "decoder") if getattr(request, name)]
    if named:
        message = f"{', '.join(named)} apply to this server's own model, not to a remote one"
        raise InvalidRequest(message, detail(named[0], message, "remote"))
    return Extras((), None, None)


def apply(params: Any, extras: Extras) -> Any:
    """GenerationParams with the resolved LoRAs, decoder and preset name."""
    return replace(params, loras=extras.loras, decoder=extras.decoder,
                   preset=extras.preset.name if extras.preset else None)


def _preset(name: str, settings: Settings, model: JobModel) -> Preset:
    family = model.family
    if family is None:
        if not settings.use_mocks:
            message = f"presets follow the model's family, and the folder of {model.label} is not available yet"
            raise InvalidRequest(message, detail("preset", message, "model_not_ready", model=model.id))
        family = detect_family_fallback()
    try:
        return choose(name, family, settings.loras_dir, tiny_decoder_installed(model.folder))
    except PresetUnavailable as exc:
        message = f"{exc} ({model.label})"
        raise InvalidRequest(message, detail("preset", message, "unavailable", preset=name, model=model.id)) from None


def detect_family_fallback() -> Family:
    """Mock mode without a model folder: presets as for SD 1.5."""
    from sdedge.families import FAMILIES, FamilyId

    return FAMILIES[FamilyId.SD]


def _loras(prompt: str, requested: list[Any], preset: Preset | None, settings: Settings,
           model: JobModel) -> tuple[LoraWeight, ...]:
    try:
        _, tags = parse_prompt(prompt, settings.lora_max_weight)
    except LoraSyntaxError as exc:
        raise InvalidRequest(str(exc), detail("prompt", str(exc), "LoraSyntaxError", lora=exc.name)) from None
    weights: dict[str, float] = {}
    for name, weight in [(t.name, t.weight) for t in tags] + [(r.name, r.weight) for r in requested]:
        weights[name] = weights.get(name, 0.0) + float(weight)
    for name, weight in preset.loras if preset else ():
        weights.setdefault(name, weight)  # the request's own weight for the preset's LoRA wins
    if not weights:
        return ()
    if not settings.lora_enabled:
        message = "LoRA is switched off on this server (LORA_ENABLED=false)"
        raise InvalidRequest(message, detail("loras", message, "disabled"))
    _check_limits(weights, settings)
    arch = model_arch(model.folder) if model.folder is not None else None
    return tuple(_checked(name, weight, settings.loras_dir, arch, model.label) for name, weight in weights.items())


def _check_limits(weights: dict[str, float], settings: Settings) -> None:
    if len(weights) > settings.lora_max_count:
        message = f"{len(weights)} LoRAs; at most LORA_MAX_COUNT={settings.lora_max_count} per request"
        raise InvalidRequest(message, detail("loras", message, "limit"))
    for name, weight in weights.items():
        if abs(weight) > settings.lora_max_weight:
            message = f"LoRA {name!r}: weight {weight:g} is outside +-LORA_MAX_WEIGHT={settings.lora_max_weight:g}"
            raise InvalidRequest(message, detail("loras", message, "limit", lora=name))


def _checked(name: str, weight: float, lora_dir: Path, arch: Any, model: str) -> LoraWeight:
    with map_exceptions(LORA_ERRORS):
        path = lora_file(lora_dir, name)
        info = inspect_lora(path, name)
        if arch is not None:
            check_fits(name, info, arch, model)
        return LoraWeight(name, weight, short_hash(path))
