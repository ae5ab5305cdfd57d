"""Mock mode (USE_MOCKS=true): the engine interface without a model, drawing placeholders."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from sdedge.engine.params import (
    GenerationOutput, GenerationParams, ImageInputs, PartialOutput, StepCallback, StepEvent, never_stop,
)
from sdedge.errors import GenerationCanceled


class MockEngine:
    """Placeholder images for USE_MOCKS=true: no model, same interface."""

    name = "mock"

    def __init__(self, requested_device: str = "CPU") -> None:
        self.requested_device = requested_device
        self.device = "mock"

    def generate(self, params: GenerationParams, on_step: StepCallback | None = None,
                 inputs: ImageInputs | None = None) -> GenerationOutput:
        """Draw a seed-coloured gradient labelled MOCK, calling on_step like the real engine."""
        on_step = on_step or never_stop
        images: list[Image.Image] = []
        for index in range(params.num_images):
            for step in range(1, params.steps + 1):
                if on_step(StepEvent(index, params.num_images, step, params.steps)):
                    stopped = GenerationCanceled("generation canceled")
                    latent = np.zeros((1, 4, params.height // 8, params.width // 8), np.float32)
                    stopped.partial = PartialOutput(images, [params.seed_for(i) for i in range(index)], latent,
                                                    params.seed_for(index))
                    raise stopped
            images.append(_placeholder(params.width, params.height, params.seed_for(index)))
        return GenerationOutput(images, [params.seed_for(i) for i in range(params.num_images)])

    supports_image_inputs = True

    def decode_latent(self, latent: np.ndarray, params: GenerationParams) -> Image.Image:
        """A placeholder, as for a finished image."""
        return _placeholder(params.width, params.height, params.seed)

    def info(self) -> dict[str, Any]:
        """Mock facts."""
        return {"engine": self.name, "compiled_shapes": []}


def _placeholder(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, width)[None, :, None]
    pixels = (start + (end - start) * ramp).astype(np.uint8)
    image = Image.fromarray(np.broadcast_to(pixels, (height, width, 3)).copy())
    ImageDraw.Draw(image).text((4, 4), "MOCK", fill=(255, 255, 255))
    return image
