"""What the server tells monitors and clients about itself: health, limits, versions, the modes."""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

from sdedge import __version__
from sdedge.config import Settings
from sdedge.engine.loader import EngineLoader
from sdedge.file_store import FileStore
from sdedge.lora_listing import presets_view
from sdedge.modes import MODES, ModeSpec
from sdedge.samplers import SAMPLER_NAMES, SAMPLERS

# Fields of every request model that are not part of the form a person fills in.
# (loras, preset and decoder have their own controls, fed by GET /loras and GET /presets)
_NOT_FORM_FIELDS = {"transaction_key", "model", "priority", "device", "loras", "preset", "decoder"}
NO_ENCODER_REASON = "this model has no VAE encoder: image inputs are unavailable"


def health_body(settings: Settings, loader: EngineLoader, images: FileStore, started_at: float,
                database_error: str | None) -> dict[str, Any]:
    """Everything a monitor or the page's status badge wants to know; ready needs the model and the database."""
    status = loader.status()
    ready = loader.ready and database_error is None
    state = "ok" if ready else ("database_unavailable" if loader.ready else status["state"])
    return {
        "status": state,
        "ready": ready,
        "reason": status.pop("reason") if not loader.ready else database_error,
        "used_mocks": settings.use_mocks,
        "model": {"id": settings.stable_diffusion_repo_id, "path": status.pop("model_path")},
        "device": {"requested": settings.openvino_device, "actual": status.pop("actual_device")},
        "loader": status,
        "limits": limits(settings),
        "versions": versions(),
        "uptime_seconds": round(time.time() - started_at, 3),
        "disk": disk_status(settings, images),
        "paths": {"generated_images_dir": str(settings.generated_images_dir),
                  "models_cache_dir": str(settings.models_cache_dir), "data_dir": str(settings.data_dir)},
    }


def disk_status(settings: Settings, images: FileStore) -> dict[str, Any]:
    """Free space where images are written, whether it is low, and when a write last found it full."""
    free = images.free_bytes()
    full_at = images.last_disk_full
    low = free < settings.min_free_disk_mb * 1024 * 1024 or full_at is not None
    warning = None
    if low:
        warning = (f"the disk holding {images.root} is full: jobs fail with disk_full until space is freed"
                   if full_at is not None else f"less than MIN_FREE_DISK_MB={settings.min_free_disk_mb} MB free")
    return {"generated_dir": str(images.root), "free_bytes": free, "low": low, "warning": warning,
            "last_full_at": full_at}


def limits(settings: Settings) -> dict[str, Any]:
    """Request limits and defaults, so clients can shape their forms to this server."""
    s = settings
    return {
        "min_size": s.min_size, "max_width": s.max_width, "max_height": s.max_height, "max_steps": s.max_steps,
        "max_images": s.max_images, "max_prompt_length": s.max_prompt_length, "max_image_bytes": s.max_image_bytes,
        "defaults": {"steps": s.default_steps, "guidance_scale": s.default_guidance_scale, "size": s.default_size,
                     "sampler": s.default_sampler},
    }


def versions() -> dict[str, str]:
    """Versions of sdedge and the runtime it depends on."""
    found = {"sdedge": __version__, "python": platform.python_version()}
    for module in ("openvino", "openvino_genai"):
        try:
            found[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - a missing runtime is reported, not fatal, in /health
            found[module] = "unavailable"
    return found


def sampler_list(settings: Settings) -> dict[str, Any]:
    """The samplers we run, with their genai scheduler and A1111 names."""
    items = [{"name": s.name, "scheduler": s.genai_type, "a1111_name": s.a1111_name, "note": s.note,
              "default_steps": s.default_steps, "default_guidance": s.default_guidance} for s in SAMPLERS.values()]
    return {"samplers": items, "aliases": {"plms": "pndm"}, "default": settings.default_sampler}


def mode_list(settings: Settings, loader: EngineLoader) -> dict[str, Any]:
    """The generation modes, each with its route, image inputs and fields (limits and defaults applied)."""
    image_ok = loader.supports_image_inputs()
    return {"modes": [describe_mode(settings, spec, image_ok) for spec in MODES.values()], "default": "text2img"}


def describe_mode(settings: Settings, spec: ModeSpec, image_ok: bool) -> dict[str, Any]:
    """One mode as the page builds its form from it."""
    schema = spec.request_model.model_json_schema()
    images = list(spec.image_inputs)
    fields = {key: _describe_field(settings, key, value) for key, value in schema.get("properties", {}).items()
              if key not in _NOT_FORM_FIELDS and key not in images}
    available = image_ok or not images
    return {"id": spec.mode.value, "label": spec.label, "path": f"/generate/{spec.mode.value}", "inputs": images,
            "fields": fields, "required": [f for f in schema.get("required", []) if f not in images],
            "available": available, "reason": None if available else NO_ENCODER_REASON}


def _describe_field(settings: Settings, key: str, spec: dict[str, Any]) -> dict[str, Any]:
    s = settings
    # an optional field's type and bounds sit in the non-null branch of its anyOf
    variants = [item for item in spec.get("anyOf", [spec]) if item.get("type") not in (None, "null")]
    inner = {**(variants[0] if variants else {}), **{k: v for k, v in spec.items() if k != "anyOf"}}
    out: dict[str, Any] = {"type": inner.get("type", "string"), "description": spec.get("description")}
    for name in ("default", "minimum", "maximum", "enum", "maxLength"):
        if inner.get(name) is not None:
            out[name] = inner[name]
    limits_by_field: dict[str, dict[str, Any]] = {
        "prompt": {"maxLength": s.max_prompt_length}, "negative_prompt": {"maxLength": s.max_prompt_length},
        "width": {"minimum": s.min_size, "maximum": s.max_width, "multipleOf": 8, "default": s.default_size},
        "height": {"minimum": s.min_size, "maximum": s.max_height, "multipleOf": 8, "default": s.default_size},
        "num_inference_steps": {"minimum": 1, "maximum": s.max_steps, "default": s.default_steps},
        "guidance_scale": {"default": s.default_guidance_scale},
        "num_images": {"maximum": s.max_images},
        "sampler": {"enum": list(SAMPLER_NAMES), "default": s.default_sampler},
    }
    out.update(limits_by_field.get(key, {}))
    return out
