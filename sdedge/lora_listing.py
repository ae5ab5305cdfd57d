"""What GET /loras, /sdapi/v1/loras and GET /presets list: the LoRA folder and the model's presets.

Each LoRA says which family and architecture it fits and whether it fits the loaded model (the same
check a request meets); `presets_view` is the model's three presets with their steps, guidance, sampler,
decoder, LoRAs, and what they need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdedge.config import Settings
from sdedge.families import FAMILIES, Family, FamilyId
from sdedge.generation_extras import family_of
from sdedge.loras import (
    LoraError, LoraFile, LoraInfo, check_fits, inspect_lora, list_loras, model_arch, short_hash,
)
from sdedge.presets import presets_for, tiny_decoder_installed

FITS = {"sd1": "SD 1.x (and LCM on SD 1.5)", "sd2": "SD 2.x", "sd": "Stable Diffusion (SD 1.x/2.x UNet)",
        "sdxl": "SDXL", "sd3": "SD3", "flux": "FLUX", "unknown": "unknown"}


def lora_items(settings: Settings, model_dir: Path | None) -> list[dict[str, Any]]:
    """Every LoRA file in LORA_DIR with its layout, the family it fits and whether it fits this model."""
    arch = model_arch(model_dir) if model_dir is not None else None
    return [_item(lora, settings.loras_dir, arch) for lora in list_loras(settings.loras_dir)]


def _item(lora: LoraFile, lora_dir: Path, arch: Any) -> dict[str, Any]:
    info: LoraInfo | None = None
    problem: str | None = None
    try:
        info = inspect_lora(lora.path, lora.name)
        if arch is not None:
            check_fits(lora.name, info, arch)
    except LoraError as exc:
        problem = str(exc)
    return {
        "name": lora.name, "alias": lora.alias, "path": str(lora.path.relative_to(Path(lora_dir).resolve())),
        "size": lora.size, "hash": short_hash(lora.path),
        "layout": info.layout if info else "unknown", "family": FITS[info.base] if info else "unknown",
        "base": info.base if info else "unknown",
        "fits_model": None if arch is None else problem is None, "problem": problem,
        "metadata": _metadata(info),
    }


def _metadata(info: LoraInfo | None) -> dict[str, str]:
    """The training metadata A1111 shows (kohya's ss_* keys), without the very long ones."""
    if info is None:
        return {}
    return {key: value for key, value in info.metadata.items() if len(value) <= 500}


def a1111_loras(settings: Settings, model_dir: Path | None) -> list[dict[str, Any]]:
    """GET /sdapi/v1/loras: A1111's shape (name, alias, path, metadata), plus the family it fits."""
    return [{"name": item["name"], "alias": item["alias"], "path": str(settings.loras_dir / item["path"]),
             "metadata": item["metadata"], "family": item["family"], "fits_model": item["fits_model"]}
            for item in lora_items(settings, model_dir)]


def presets_view(settings: Settings, model_dir: Path | None, family: Family | None = None) -> dict[str, Any]:
    """The model's presets (family: read from model_dir unless given), what each sets and needs, and whether it
    can run on this server now."""
    family = family or family_of(model_dir)
    known = family is not None
    family = family or FAMILIES[FamilyId.SD]
    items = presets_for(family, settings.loras_dir, tiny_decoder_installed(model_dir))
    return {"family": family.id.value if known else None, "family_name": family.name if known else None,
            # steps as they run here: a preset never passes MAX_STEPS
            "presets": [{**preset.to_dict(), "steps": min(preset.steps, settings.max_steps)} for preset in items],
            "note": "fields a request sets explicitly (steps, guidance, sampler, decoder, a LoRA's weight) win "
                    "over the preset's" + ("" if known else "; the model is not located yet: SD 1.5 shown")}
