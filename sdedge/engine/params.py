"""The engine's value objects and interface: what a generation needs, what it reports, what it returns."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np
from PIL import Image

MAX_SEED = 2**32 - 1


def random_seed() -> int:
    """A fresh seed in the range genai's generators accept."""
    return secrets.randbelow(MAX_SEED + 1)


DECODERS = ("full", "tiny")


@dataclass(frozen=True)
class LoraWeight:
    """One LoRA of a generation: its name in LORA_DIR, its weight and A1111's short hash of the file."""

    name: str
    weight: float
    hash: str = ""


@dataclass(frozen=True)
class GenerationParams:
    """Everything one generation needs, defaults already applied."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    sampler: str
    seed: int
    num_images: int = 1
    mode: str = "text2img"
    strength: float = 1.0
    style_strength: float = 0.7
    content_strength: float = 0.3
    loras: tuple[LoraWeight, ...] = ()  # the prompt's <lora:...> tags and the `loras` field, merged
    decoder: str | None = None  # "full" VAE or the "tiny" autoencoder (TAESD); None: the engine's default
    preset: str | None = None  # the preset that chose steps/guidance/sampler/decoder, for the record

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GenerationParams:
        """Rebuild from to_dict() output (a stored job), ignoring keys that are not parameters."""
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        if "loras" in kept:
            kept["loras"] = tuple(item if isinstance(item, LoraWeight) else LoraWeight(**item)
                                  for item in kept["loras"] or ())
        return cls(**kept)

    def seed_for(self, index: int) -> int:
        """Image i of a batch uses seed+i, as AUTOMATIC1111 does, so each image is reproducible alone."""
        return (self.seed + index) % (MAX_SEED + 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON responses."""
        return asdict(self)


@dataclass(frozen=True)
class StepEvent:
    """One finished denoising step."""

    image_index: int
    num_images: int
    step: int
    total_steps: int
    latent: np.ndarray | None = None
    preview: Image.Image | None = None  # a preview already drawn (a remote engine's progress image)

    @property
    def fraction(self) -> float:
        """Progress over the whole request, 0..1."""
        done = self.image_index * self.total_steps + self.step
        return done / max(1, self.num_images * self.total_steps)


StepCallback = Callable[[StepEvent], bool]


def never_stop(_: StepEvent) -> bool:
    """The default step callback: never asks to stop."""
    return False


@dataclass
class ImageInputs:
    """Input images, already fitted to the output size: init/inpaint/content image, mask, style image."""

    image: Image.Image | None = None
    mask: Image.Image | None = None
    style: Image.Image | None = None


@dataclass
class GenerationOutput:
    """Images produced by one request, with their seeds and stage timings in milliseconds."""

    images: list[Image.Image]
    seeds: list[int]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class PartialOutput:
    """What a stopped run had made: the finished images, and the last latent of the one it stopped in."""

    images: list[Image.Image]
    seeds: list[int]
    latent: np.ndarray | None = None
    latent_seed: int | None = None


class Engine(Protocol):
    """What the server needs from an inference backend."""

    name: str
    requested_device: str
    device: str

    def generate(self, params: GenerationParams, on_step: StepCallback | None = None,
                 inputs: ImageInputs | None = None) -> GenerationOutput:
        """Run one request; raise GenerationCanceled when on_step asked to stop."""
        ...

    def decode_latent(self, latent: np.ndarray, params: GenerationParams) -> Image.Image:
        """An image from a latent (a stopped run's last step), through the model's VAE decoder."""
        ...

    def info(self) -> dict[str, Any]:
        """Facts for /health: device, compiled shapes, versions."""
        ...

    @property
    def supports_image_inputs(self) -> bool:
        """True when img2img, inpainting and style transfer can run."""
        ...
