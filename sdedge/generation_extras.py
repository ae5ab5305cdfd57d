"""The LoRAs, preset and decoder of one request, resolved against LORA_DIR and the model folder.

`resolve(request, settings, model_dir)` runs at submission (and in `sdedge generate`): the prompt's
`<lora:name:weight>` tags and the `loras` field merged (a name given twice adds up, as in A1111), the
preset's LoRA added unless the request names it, every file found inside LORA_DIR, read and checked
against the model's family and widths, the decoder checked to be installed. Problems are 400s naming
the LoRA (404 for a LoRA that is not in LORA_DIR), before anything is queued.
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
from sdedge.presets import Preset, PresetUnavailable, choose, tiny_decoder_installed

TINY_MISSING = ("the tiny decoder is not installed for this model: run `sdedge convert MODEL_FOLDER "
                "--tiny-autoencoder` (or `--from-ir` to download a published OpenVINO export), then restart")


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


def resolve(request: Any, settings: Settings, model_dir: Path | None) -> Extras:
    """Resolve request.preset, the LoRAs (tags and request.loras) and request.decoder (raises 400/404)."""
    preset = _preset(request.preset, settings, model_dir) if request.preset else None
    loras = _loras(request.prompt, list(request.loras or ()), preset, settings, model_dir)
    decoder = request.decoder or (preset.decoder if preset else None) or \
        ("tiny" if settings.fast_decoder and tiny_decoder_installed(model_dir) else "full")
    if decoder == "tiny" and not tiny_decoder_installed(model_dir) and not settings.use_mocks:
        raise InvalidRequest(TINY_MISSING, detail("decoder", TINY_MISSING, "not_installed"))
    return Extras(loras, preset, decoder)


def model_folder(settings: Settings, loader: Any) -> Path | None:
    """The local model's folder once it is located (LoRA checks and presets read its configs), else None."""
    if loader.model_path:
        return Path(loader.model_path)
    return Path(settings.stable_diffusion_repo_id) if settings.model_is_local else None


def for_job(request: Any, settings: Settings, loader: Any, *, remote: bool) -> Extras:
    """resolve() for a job of the local model; for_remote() for one a remote engine runs."""
    return for_remote(request) if remote else resolve(request, settings, model_folder(settings, loader))


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


def _preset(name: str, settings: Settings, model_dir: Path | None) -> Preset:
    family = family_of(model_dir)
    if family is None:
        if not settings.use_mocks:
            message = "presets follow the model's family, and the model folder is not available yet"
            raise InvalidRequest(message, detail("preset", message, "model_not_ready"))
        family = detect_family_fallback()
    try:
        return choose(name, family, settings.loras_dir, tiny_decoder_installed(model_dir))
    except PresetUnavailable as exc:
        raise InvalidRequest(str(exc), detail("preset", str(exc), "unavailable", preset=name)) from None


def detect_family_fallback() -> Family:
    """Mock mode without a model folder: presets as for SD 1.5."""
    from sdedge.families import FAMILIES, FamilyId

    return FAMILIES[FamilyId.SD]


def _loras(prompt: str, requested: list[Any], preset: Preset | None, settings: Settings,
           model_dir: Path | None) -> tuple[LoraWeight, ...]:
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
    arch = model_arch(model_dir) if model_dir is not None else None
    return tuple(_checked(name, weight, settings.loras_dir, arch) for name, weight in weights.items())


def _check_limits(weights: dict[str, float], settings: Settings) -> None:
    if len(weights) > settings.lora_max_count:
        message = f"{len(weights)} LoRAs; at most LORA_MAX_COUNT={settings.lora_max_count} per request"
        raise InvalidRequest(message, detail("loras", message, "limit"))
    for name, weight in weights.items():
        if abs(weight) > settings.lora_max_weight:
            message = f"LoRA {name!r}: weight {weight:g} is outside +-LORA_MAX_WEIGHT={settings.lora_max_weight:g}"
            raise InvalidRequest(message, detail("loras", message, "limit", lora=name))


def _checked(name: str, weight: float, lora_dir: Path, arch: Any) -> LoraWeight:
    with map_exceptions(LORA_ERRORS):
        path = lora_file(lora_dir, name)
        info = inspect_lora(path, name)
        if arch is not None:
            check_fits(name, info, arch)
        return LoraWeight(name, weight, short_hash(path))
