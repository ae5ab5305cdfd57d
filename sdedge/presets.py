"""Speed presets per model family: `fast`, `balanced`, `quality` as concrete steps, guidance, sampler,
decoder and LoRAs.

A request's `preset` fills only what the request leaves out: an explicit `num_inference_steps`,
`guidance_scale`, `sampler`, `decoder` or a LoRA of the same name wins. The resolved values are what the
job's parameters and the PNG's infotext record. `presets_for(...)` is the listing `/presets` (and the
model library) shows; `choose(...)` is the one a request gets. Pure: reads the LoRA folder's names and
the model folder's files, imports no runtime.

SD 1.5 `fast` is LCM-LoRA (latent-consistency/lcm-lora-sdv1-5) with the LCM sampler, 4 steps, guidance 1:
it needs that LoRA file in LORA_DIR, and says so when it is missing. LCM models run 4 steps at guidance 1
by themselves; distilled one-step families (SD-Turbo, SDXL-Turbo, SDXS) 1 step at guidance 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdedge.families import Family, FamilyId
from sdedge.loras import list_loras

PRESET_NAMES: tuple[str, ...] = ("fast", "balanced", "quality")
TINY_DECODER = Path("vae_decoder_tiny") / "openvino_model.xml"
# The hub repos of LCM-LoRA per family, and the file names in LORA_DIR that count as them.
LCM_LORA_REPOS = {"sd": "latent-consistency/lcm-lora-sdv1-5", "sdxl": "latent-consistency/lcm-lora-sdxl"}
_LCM_NAMES = {"sd": re.compile(r"lcm[-_ ]?lora[-_ ]?(sd)?(v?1[-_.]?5|15|sdv1[-_]5)", re.IGNORECASE),
              "sdxl": re.compile(r"lcm[-_ ]?lora[-_ ]?(sd)?xl", re.IGNORECASE)}


class PresetUnavailable(ValueError):
    """The preset needs something this server lacks (the message says what and how to get it)."""


@dataclass(frozen=True)
class Preset:
    """One preset resolved for a model: what it sets, and whether it can run here."""

    name: str
    steps: int
    guidance_scale: float
    sampler: str
    decoder: str
    loras: tuple[tuple[str, float], ...] = ()
    needs: tuple[str, ...] = ()  # what it needs beyond the model: "LoRA latent-consistency/...", "tiny decoder"
    available: bool = True
    reason: str | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The preset as /presets lists it."""
        return {"name": self.name, "steps": self.steps, "guidance_scale": self.guidance_scale,
                "sampler": self.sampler, "decoder": self.decoder,
                "loras": [{"name": name, "weight": weight} for name, weight in self.loras],
                "needs": list(self.needs), "available": self.available, "reason": self.reason,
                "notes": list(self.notes)}


def tiny_decoder_installed(model_dir: Path | None) -> bool:
    """True when the model folder holds the tiny autoencoder's decoder (sdedge convert --tiny-autoencoder)."""
    return model_dir is not None and (Path(model_dir) / TINY_DECODER).is_file()


def is_lcm_lora(name: str, family: str) -> bool:
    """True when a LoRA's name says it is LCM-LoRA for family ("sd" or "sdxl")."""
    pattern = _LCM_NAMES.get(family)
    return pattern is not None and pattern.search(name) is not None


def find_lcm_lora(lora_dir: Path, family: str) -> str | None:
    """The name of an LCM-LoRA for family ("sd" or "sdxl") in lora_dir, or None."""
    names = [item.name for item in list_loras(lora_dir)]
    return next((name for name in names if is_lcm_lora(name, family)), None)


def lcm_lora_family(family: Family) -> str | None:
    """Which LCM-LoRA fits the family: "sd" (SD 1.x), "sdxl", or None (none is published)."""
    if family.id is FamilyId.SD and family.name.startswith("Stable Diffusion 1"):
        return "sd"
    if family.id is FamilyId.SDXL:
        return "sdxl"
    return None


def presets_for(family: Family, lora_dir: Path, tiny_installed: bool) -> list[Preset]:
    """The three presets of a family on this server (LoRA folder and tiny decoder as they are now)."""
    tiny = "tiny" if tiny_installed and family.latent_channels == 4 else "full"
    tiny_notes = () if tiny == "tiny" else ("the tiny decoder is not installed (sdedge convert MODEL "
                                            "--tiny-autoencoder): decoding with the full VAE",)
    tiny_needs = ("tiny decoder",) if family.latent_channels == 4 else ()
    if family.distilled and family.id in (FamilyId.SD, FamilyId.SDXL):  # SD-Turbo, SDXL-Turbo, SDXS
        return [Preset("fast", 1, 0.0, "euler_a", tiny, needs=tiny_needs, notes=tiny_notes),
                Preset("balanced", 2, 0.0, "euler_a", tiny, needs=tiny_needs, notes=tiny_notes),
                Preset("quality", 4, 0.0, "euler_a", "full")]
    if family.id is FamilyId.LCM:
        return [Preset("fast", 4, 1.0, "lcm", tiny, needs=tiny_needs, notes=tiny_notes),
                Preset("balanced", 6, 1.0, "lcm", "full"),
                Preset("quality", 8, family.default_guidance, "lcm", "full")]
    if family.distilled:  # FLUX.1-schnell, Z-Image turbo: few steps by design, guidance ignored
        steps = family.default_steps
        return [Preset("fast", max(1, steps // 4), family.default_guidance, "auto", "full"),
                Preset("balanced", max(1, steps // 2), family.default_guidance, "auto", "full"),
                Preset("quality", steps, family.default_guidance, "auto", "full")]
    sampler = "euler_a" if "EULER_ANCESTRAL_DISCRETE" in family.samplers else "auto"
    balanced = Preset("balanced", 20, family.default_guidance, sampler, "full")
    quality = Preset("quality", 30, family.default_guidance, sampler, "full")
    return [_lcm_preset(family, lora_dir, tiny, tiny_needs, tiny_notes), balanced, quality]


def _lcm_preset(family: Family, lora_dir: Path, tiny: str, tiny_needs: tuple[str, ...],
                tiny_notes: tuple[str, ...]) -> Preset:
    """fast for a full-step family: LCM-LoRA + LCM sampler, 4 steps, guidance 1 (when the LoRA is there)."""
    kind = lcm_lora_family(family)
    if kind is None:
        return Preset("fast", 4, 1.0, "lcm", tiny, available=False,
                      reason=f"no LCM-LoRA is published for {family.name}; use balanced or a distilled model")
    repo = LCM_LORA_REPOS[kind]
    needs = (f"LoRA {repo}", *tiny_needs)
    name = find_lcm_lora(lora_dir, kind)
    if name is None:
        file = f"{repo.split('/')[1]}.safetensors"
        return Preset("fast", 4, 1.0, "lcm", tiny, needs=needs, available=False,
                      reason=f"the fast preset needs LCM-LoRA: download pytorch_lora_weights.safetensors from "
                             f"{repo} and save it as {Path(lora_dir) / file}", notes=tiny_notes)
    return Preset("fast", 4, 1.0, "lcm", tiny, loras=((name, 1.0),), needs=needs, notes=tiny_notes)


def choose(name: str, family: Family, lora_dir: Path, tiny_installed: bool) -> Preset:
    """The preset called name for this family; PresetUnavailable says what it lacks."""
    if name not in PRESET_NAMES:
        raise PresetUnavailable(f"unknown preset {name!r}; valid: {', '.join(PRESET_NAMES)}")
    preset = next(p for p in presets_for(family, lora_dir, tiny_installed) if p.name == name)
    if not preset.available:
        raise PresetUnavailable(f"preset {name!r}: {preset.reason}")
    return preset
