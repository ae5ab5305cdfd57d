"""Model families openvino-genai runs, and which one a model folder holds.

`detect_family(folder)` reads the folder's `model_index.json` and component configs (never its
name) and returns a `Family`: the modes openvino-genai 2026.4 offers for it, how guidance and
negative prompts behave, size rules, defaults, latent layout and LoRA support. The facts and their
sources in openvino-genai are in docs/FAMILIES.md. Pure: reads JSON, imports no runtime.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from sdedge.engine.previews import LATENT_RGB

__all__ = [
    "FAMILIES",
    "Family",
    "FamilyId",
    "Guidance",
    "Mode",
    "UnsupportedModel",
    "detect_family",
    "unpack_latent",
]


class UnsupportedModel(ValueError):
    """The folder is not a diffusers-layout model of a family openvino-genai runs."""


class FamilyId(str, Enum):
    """Stable identifiers (API values) of the families."""

    SD = "sd"  # Stable Diffusion 1.x / 2.x (and SD-Turbo)
    LCM = "lcm"  # latent consistency models on the SD 1.5 UNet
    SD_INPAINT = "sd-inpaint"  # dedicated 9-channel SD inpainting UNet
    SDXL = "sdxl"  # SDXL base and SDXL-Turbo
    SDXL_INPAINT = "sdxl-inpaint"  # dedicated 9-channel SDXL inpainting UNet
    SD3 = "sd3"  # SD 3 / 3.5 (MMDiT)
    FLUX = "flux"  # FLUX.1 schnell / dev
    FLUX_FILL = "flux-fill"  # FLUX.1 Fill (inpainting model)
    FLUX2_KLEIN = "flux2-klein"  # FLUX.2 [klein]
    Z_IMAGE = "z-image"
    QWEN_IMAGE = "qwen-image"


class Mode(str, Enum):
    """Generation modes, named as sdedge's API names them."""

    TEXT2IMG = "text2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"


class Guidance(str, Enum):
    """What `guidance_scale` does in a family."""

    CFG = "cfg"  # classifier-free guidance: > 1 runs the denoiser twice per step (batch 2)
    EMBEDDED = "embedded"  # LCM: the scale is fed to the UNet as an embedding; one pass
    DISTILLED = "distilled"  # FLUX.1-dev: the scale is a transformer input; one pass
    NONE = "none"  # ignored (FLUX.1-schnell, Z-Image turbo)


@dataclass(frozen=True)
class Family:
    """What openvino-genai does with one family; detect_family fills in the model's own numbers."""

    id: FamilyId
    name: str
    pipeline_class: str  # model_index.json _class_name
    modes: frozenset[Mode]
    build_mode: Mode  # the genai pipeline to build once; the other modes are derived from it
    reset_scheduler: bool  # derived pipelines come without a scheduler: call set_scheduler (SD3, FLUX)
    negative_prompt: bool  # accepted at all (only when guidance > 1; genai raises otherwise)
    guidance: Guidance
    default_size: int  # pixels, square
    size_multiple: int  # width and height must be multiples of this
    default_steps: int
    default_guidance: float
    default_strength: float  # img2img
    sampler: str  # Scheduler.Type of the model's scheduler_config.json
    samplers: tuple[str, ...]  # Scheduler.Type values the pipeline can run
    max_sequence_length: int  # prompt tokens the text encoder takes (T5/Qwen: settable up to 512)
    latent_channels: int
    latent_packed: bool  # callback latents are 2x2-packed [B, h/2*w/2, 4C] (FLUX, Qwen-Image)
    vae_scale: int  # pixels per latent cell
    vae_scaling_factor: float
    vae_shift_factor: float
    lora: bool
    distilled: bool  # few-step model (LCM, Turbo, schnell): defaults are 1-4 steps
    t5_encoder: bool  # a T5 text encoder: genai fixes its input shape at the first call (docs)
    preview_rgb: tuple[tuple[float, float, float], ...] | None = None  # latent channel -> RGB

    @property
    def derived_modes(self) -> frozenset[Mode]:
        """Modes served by pipelines derived from the one built (weights shared)."""
        return self.modes - {self.build_mode}


_UNET_SCHEDULERS = ("DDIM", "EULER_DISCRETE", "EULER_ANCESTRAL_DISCRETE", "PNDM", "LCM", "LMS_DISCRETE")
_FLOW = ("FLOW_MATCH_EULER_DISCRETE",)
_ALL = frozenset(Mode)
_INPAINT_ONLY = frozenset({Mode.INPAINT})
_NO_INPAINT = frozenset({Mode.TEXT2IMG, Mode.IMG2IMG})
_SD15_RGB = tuple((float(r), float(g), float(b)) for r, g, b in LATENT_RGB.tolist())


def _family(**kw: Any) -> Family:
    base: dict[str, Any] = dict(
        modes=_ALL, build_mode=Mode.INPAINT, reset_scheduler=False, negative_prompt=True, guidance=Guidance.CFG,
        default_size=512, size_multiple=8, default_steps=50, default_guidance=7.5, default_strength=0.8,
        sampler="PNDM", samplers=_UNET_SCHEDULERS, max_sequence_length=77, latent_channels=4, latent_packed=False,
        vae_scale=8, vae_scaling_factor=0.18215, vae_shift_factor=0.0, lora=True, distilled=False,
        t5_encoder=False,
    )  # fmt: skip
    base.update(kw)
    return Family(**base)


FAMILIES: dict[FamilyId, Family] = {
    f.id: f
    for f in (
        _family(id=FamilyId.SD, name="Stable Diffusion 1.x/2.x", pipeline_class="StableDiffusionPipeline",
                preview_rgb=_SD15_RGB),
        _family(id=FamilyId.LCM, name="Latent Consistency Model", pipeline_class="LatentConsistencyModelPipeline",
                negative_prompt=False, guidance=Guidance.EMBEDDED, default_steps=4, default_guidance=8.5,
                sampler="LCM", distilled=True, preview_rgb=_SD15_RGB),
        _family(id=FamilyId.SD_INPAINT, name="Stable Diffusion inpainting", pipeline_class="StableDiffusionInpaintPipeline",
                modes=_INPAINT_ONLY, default_strength=1.0, preview_rgb=_SD15_RGB),
        _family(id=FamilyId.SDXL, name="Stable Diffusion XL", pipeline_class="StableDiffusionXLPipeline",
                default_size=1024, default_guidance=5.0, default_strength=0.3, sampler="EULER_DISCRETE",
                vae_scaling_factor=0.13025),
        _family(id=FamilyId.SDXL_INPAINT, name="Stable Diffusion XL inpainting",
                pipeline_class="StableDiffusionXLInpaintPipeline", modes=_INPAINT_ONLY, default_size=1024,
                default_strength=0.9999, sampler="EULER_DISCRETE", vae_scaling_factor=0.13025),
        _family(id=FamilyId.SD3, name="Stable Diffusion 3/3.5", pipeline_class="StableDiffusion3Pipeline",
                reset_scheduler=True, default_size=1024, size_multiple=16, default_steps=28, default_guidance=7.0,
                default_strength=0.6, sampler="FLOW_MATCH_EULER_DISCRETE", samplers=_FLOW, max_sequence_length=256,
                latent_channels=16, vae_scaling_factor=1.5305, vae_shift_factor=0.0609, lora=False,
                t5_encoder=True),
        _family(id=FamilyId.FLUX, name="FLUX.1", pipeline_class="FluxPipeline", reset_scheduler=True,
                negative_prompt=False, guidance=Guidance.NONE, default_size=1024, size_multiple=16, default_steps=4,
                default_guidance=0.0, default_strength=0.6, sampler="FLOW_MATCH_EULER_DISCRETE", samplers=_FLOW,
                max_sequence_length=512, latent_channels=16, latent_packed=True, vae_scaling_factor=0.3611,
                vae_shift_factor=0.1159, distilled=True, t5_encoder=True),
        _family(id=FamilyId.FLUX_FILL, name="FLUX.1 Fill", pipeline_class="FluxFillPipeline", modes=_INPAINT_ONLY,
                negative_prompt=False, guidance=Guidance.DISTILLED, default_size=1024, size_multiple=16,
                default_guidance=30.0, default_strength=1.0, sampler="FLOW_MATCH_EULER_DISCRETE", samplers=_FLOW,
                max_sequence_length=512, latent_channels=16, latent_packed=True, vae_scaling_factor=0.3611,
                vae_shift_factor=0.1159, t5_encoder=True),
        _family(id=FamilyId.FLUX2_KLEIN, name="FLUX.2 [klein]", pipeline_class="Flux2KleinPipeline",
                modes=_NO_INPAINT, build_mode=Mode.IMG2IMG, negative_prompt=False, default_size=1024,
                size_multiple=16, default_guidance=4.0, default_strength=1.0, sampler="FLOW_MATCH_EULER_DISCRETE",
                samplers=_FLOW, max_sequence_length=512, latent_channels=32, latent_packed=True,
                vae_scaling_factor=1.0),
        _family(id=FamilyId.Z_IMAGE, name="Z-Image", pipeline_class="ZImagePipeline", modes=_NO_INPAINT,
                build_mode=Mode.IMG2IMG, negative_prompt=False, guidance=Guidance.NONE, default_size=1024,
                size_multiple=16, default_steps=8, default_guidance=0.0, sampler="FLOW_MATCH_EULER_DISCRETE",
                samplers=_FLOW, max_sequence_length=512, latent_channels=16, vae_scaling_factor=0.3611,
                vae_shift_factor=0.1159, distilled=True),
        _family(id=FamilyId.QWEN_IMAGE, name="Qwen-Image", pipeline_class="QwenImagePipeline", modes=_NO_INPAINT,
                build_mode=Mode.IMG2IMG, default_size=1024, size_multiple=16, default_guidance=4.0,
                sampler="FLOW_MATCH_EULER_DISCRETE", samplers=_FLOW, max_sequence_length=512, latent_channels=16,
                latent_packed=True, vae_scaling_factor=1.0),
    )  # fmt: skip
}

# _class_name -> family; the Inpaint/Fill classes only load as InpaintingPipeline in genai.
_BY_CLASS: dict[str, FamilyId] = {
    "StableDiffusionPipeline": FamilyId.SD,
    "LatentConsistencyModelPipeline": FamilyId.LCM,
    "StableDiffusionInpaintPipeline": FamilyId.SD_INPAINT,
    "StableDiffusionXLPipeline": FamilyId.SDXL,
    "StableDiffusionXLInpaintPipeline": FamilyId.SDXL_INPAINT,
    "StableDiffusion3Pipeline": FamilyId.SD3,
    "StableDiffusion3InpaintPipeline": FamilyId.SD3,
    "FluxPipeline": FamilyId.FLUX,
    "FluxInpaintPipeline": FamilyId.FLUX,
    "FluxFillPipeline": FamilyId.FLUX_FILL,
    "Flux2KleinPipeline": FamilyId.FLUX2_KLEIN,
    "ZImagePipeline": FamilyId.Z_IMAGE,
    "QwenImagePipeline": FamilyId.QWEN_IMAGE,
}
_INPAINT_CLASSES = {"StableDiffusion3InpaintPipeline", "FluxInpaintPipeline"}

# diffusers scheduler class -> genai Scheduler.Type (schedulers/types.cpp)
_SCHEDULER_TYPES = {
    "DDIMScheduler": "DDIM",
    "EulerDiscreteScheduler": "EULER_DISCRETE",
    "EulerAncestralDiscreteScheduler": "EULER_ANCESTRAL_DISCRETE",
    "PNDMScheduler": "PNDM",
    "LCMScheduler": "LCM",
    "LMSDiscreteScheduler": "LMS_DISCRETE",
    "FlowMatchEulerDiscreteScheduler": "FLOW_MATCH_EULER_DISCRETE",
}


def _read(path: Path) -> dict[str, Any]:
    """A JSON object from path, or {} when the file is absent."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"{path.name} in {path.parent} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UnsupportedModel(f"{path} does not hold a JSON object")
    return data


def _vae_scale(vae: dict[str, Any]) -> int | None:
    """genai's VAE scale factor: 2 ** (len(block_out_channels) - 1)."""
    blocks = vae.get("block_out_channels")
    return 2 ** (len(blocks) - 1) if isinstance(blocks, list) and blocks else None


def _denoiser(model_dir: Path) -> dict[str, Any]:
    """The UNet's or the transformer's config."""
    return _read(model_dir / "unet" / "config.json") or _read(model_dir / "transformer" / "config.json")


def _specialise(family: Family, index: dict[str, Any], model_dir: Path) -> Family:
    """Replace the family's typical numbers by the ones this model's configs give."""
    den = _denoiser(model_dir)
    vae = _read(model_dir / "vae_decoder" / "config.json") or _read(model_dir / "vae" / "config.json")
    sched = _read(model_dir / "scheduler" / "scheduler_config.json")
    changes: dict[str, Any] = {}
    scale = _vae_scale(vae) or family.vae_scale
    changes["vae_scale"] = scale
    if isinstance(vae.get("latent_channels"), int):
        changes["latent_channels"] = vae["latent_channels"]
    for key, field in (("scaling_factor", "vae_scaling_factor"), ("shift_factor", "vae_shift_factor")):
        if isinstance(vae.get(key), (int, float)):
            changes[field] = float(vae[key])
    sample = den.get("sample_size")
    # FLUX's default size is fixed at 128 latent cells in genai (flux_transformer_2d_model.hpp)
    if isinstance(sample, int) and family.id not in (FamilyId.FLUX, FamilyId.FLUX_FILL):
        changes["default_size"] = sample * scale
    sampler = _SCHEDULER_TYPES.get(str(sched.get("_class_name")))
    if sampler is not None:
        changes["sampler"] = sampler
    if family.id is FamilyId.SD3 and not (index.get("text_encoder_3") or [None, None])[1]:
        changes.update(max_sequence_length=77, t5_encoder=False)  # CLIP only; genai feeds zeros for T5
    if family.id is FamilyId.FLUX and den.get("guidance_embeds"):
        changes.update(name="FLUX.1 (guidance-distilled, dev)", guidance=Guidance.DISTILLED, default_steps=28,
                       default_guidance=3.5, distilled=False)  # fmt: skip
    if family.id in (FamilyId.SD, FamilyId.SDXL) and _is_turbo(sched):
        changes.update(name=f"{family.name} Turbo", default_steps=1, default_guidance=0.0, distilled=True)
    if family.id is FamilyId.LCM and not isinstance(den.get("time_cond_proj_dim"), int):
        # LCM-LoRA fused into SD 1.x (sdedge convert --fuse-lora): no guidance embedding, so genai runs
        # classifier-free guidance above 1 (negative prompt and all), and LCM-LoRA wants guidance 1
        changes.update(name="Latent Consistency (LCM-LoRA fused)", guidance=Guidance.CFG, negative_prompt=True,
                       default_guidance=1.0)
    if family.id is FamilyId.SD and den.get("cross_attention_dim") == 1024:
        changes["name"] = changes.get("name", family.name).replace("1.x/2.x", "2.x")
    return replace(family, **changes)


def _is_turbo(sched: dict[str, Any]) -> bool:
    """SD-Turbo and SDXL-Turbo ship an Euler-ancestral scheduler with trailing timesteps."""
    return sched.get("_class_name") == "EulerAncestralDiscreteScheduler" and sched.get("timestep_spacing") == "trailing"


def detect_family(model_dir: Path) -> Family:
    """The family of the diffusers/OpenVINO model in model_dir, from its model_index.json and configs."""
    model_dir = Path(model_dir)
    index = _read(model_dir / "model_index.json")
    if not index:
        raise UnsupportedModel(f"{model_dir} has no model_index.json: not a diffusers-layout model")
    class_name = str(index.get("_class_name", ""))
    family_id = _BY_CLASS.get(class_name)
    if family_id is None:
        known = ", ".join(sorted(_BY_CLASS))
        raise UnsupportedModel(f"{model_dir}: pipeline class {class_name or '(none)'!r} is not one openvino-genai runs ({known})")
    den = _denoiser(model_dir)
    # A 9-channel UNet (4 latent + 1 mask + 4 masked-image) is an inpainting model whatever the class says;
    # genai refuses to derive text2img/img2img from it.
    if family_id is FamilyId.SD:
        if den.get("in_channels") == 9:
            family_id = FamilyId.SD_INPAINT
        elif isinstance(den.get("time_cond_proj_dim"), int):
            family_id = FamilyId.LCM
    elif family_id is FamilyId.SDXL and den.get("in_channels") == 9:
        family_id = FamilyId.SDXL_INPAINT
    family = replace(FAMILIES[family_id], pipeline_class=class_name)
    if class_name in _INPAINT_CLASSES:
        family = replace(family, modes=_INPAINT_ONLY)
    return _specialise(family, index, model_dir)


def unpack_latent(latent: Any, family: Family, width: int, height: int) -> Any:
    """A step-callback latent as [B, C, h, w]: FLUX-style [B, h/2*w/2, 4C] latents are unpacked."""
    import numpy as np

    array = np.asarray(latent, dtype=np.float32)
    if not family.latent_packed or array.ndim == 4:
        return array
    h, w = height // family.vae_scale, width // family.vae_scale
    batch, _, packed = array.shape
    channels = packed // 4
    # genai's pack_latents: token (i, j) holds channel c's 2x2 block at offset c*4 + (dy*2 + dx)
    blocks = array.reshape(batch, h // 2, w // 2, channels, 2, 2)
    return blocks.transpose(0, 3, 1, 4, 2, 5).reshape(batch, channels, h, w)
