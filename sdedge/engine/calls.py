"""One pipeline call per mode: which openvino-genai pipeline runs, with which images and keywords.

`MODES` (sdedge/modes.py) names each mode's call; the engine runs whatever call it is given, so a
new mode is a new function here and an entry there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from sdedge.engine.params import GenerationParams, ImageInputs
from sdedge.engine.style import img2img_strength
from sdedge.errors import GenerationError


@dataclass
class Pipelines:
    """openvino-genai pipelines sharing one set of compiled weights (inpaint is None without a VAE encoder)."""

    text2image: Any
    image2image: Any = None
    inpaint: Any = None


@dataclass
class CallContext:
    """What a mode's call may use: the pipelines and the engine's style-transfer step."""

    pipes: Pipelines
    stylize: Callable[[Pipelines, GenerationParams, ImageInputs], ImageInputs]


@dataclass
class PipelineCall:
    """A ready call: pipe.generate(prompt, *images, **kwargs); no pipe means `passthrough` is the answer."""

    pipe: Any
    images: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    passthrough: Image.Image | None = None
    keep_outside: tuple[Image.Image, Image.Image] | None = None  # inpainting: (original, mask) composited back


ModeCall = Callable[[CallContext, GenerationParams, ImageInputs], PipelineCall]


def ov_image(image: Image.Image) -> Any:
    """A PIL image as the (1, H, W, 3) uint8 tensor genai takes."""
    import openvino as ov

    return ov.Tensor(np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8)[None]))


def text2img(ctx: CallContext, params: GenerationParams, inputs: ImageInputs) -> PipelineCall:
    """Text to image at the requested size."""
    return PipelineCall(ctx.pipes.text2image, kwargs={"width": params.width, "height": params.height})


def img2img(ctx: CallContext, params: GenerationParams, inputs: ImageInputs) -> PipelineCall:
    """Redraw the input image; strength 0 returns it unchanged."""
    image = _needs_image(ctx, params, inputs)
    if params.strength <= 0:
        return PipelineCall(None, passthrough=image)
    return PipelineCall(ctx.pipes.image2image, [ov_image(image)], {"strength": params.strength})


def inpaint(ctx: CallContext, params: GenerationParams, inputs: ImageInputs) -> PipelineCall:
    """Repaint under the mask; pixels outside it are composited back from the input exactly."""
    image = _needs_image(ctx, params, inputs)
    if inputs.mask is None:
        raise GenerationError("inpainting needs a mask")
    if params.strength <= 0:
        return PipelineCall(None, passthrough=image)
    # without an explicit size genai answers at the model's native size, not the input's
    kwargs = {"strength": params.strength, "width": params.width, "height": params.height}
    return PipelineCall(ctx.pipes.inpaint, [ov_image(image), ov_image(inputs.mask.convert("RGB"))], kwargs,
                        keep_outside=(image, inputs.mask))


def style_transfer(ctx: CallContext, params: GenerationParams, inputs: ImageInputs) -> PipelineCall:
    """AdaIN towards the style image (done once per request by the engine), then a light img2img."""
    image = _needs_image(ctx, params, inputs)
    strength = img2img_strength(params.content_strength)
    if strength <= 0:
        return PipelineCall(None, passthrough=image)
    return PipelineCall(ctx.pipes.image2image, [ov_image(image)], {"strength": strength})


def _needs_image(ctx: CallContext, params: GenerationParams, inputs: ImageInputs) -> Image.Image:
    if ctx.pipes.inpaint is None or inputs.image is None:
        raise GenerationError(f"{params.mode} needs an input image and a model with a VAE encoder")
    return inputs.image


def add_timings(timings: dict[str, float], metrics: Any) -> None:
    """Sum genai's per-stage durations (ms) over the images of one request."""
    stages = {
        "text_encoder_ms": metrics.get_text_encoder_infer_duration,
        "unet_ms": metrics.get_unet_infer_duration,
        "vae_decoder_ms": metrics.get_vae_decoder_infer_duration,
        "generate_ms": metrics.get_generate_duration,
    }
    for name, read in stages.items():
        try:
            value = read()
            value = value.mean if hasattr(value, "mean") else float(value)
        except Exception:  # noqa: BLE001 - a stage that did not run has no metric
            continue
        timings[name] = round(timings.get(name, 0.0) + float(value), 3)
