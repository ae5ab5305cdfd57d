"""Cheap step previews: SD 1.5 latents to RGB through a fixed linear map, no VAE call."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Least-squares fit of RGB on the four SD 1.5 latent channels (the widely used "approx cheap"
# factors): costs microseconds, where a VAE decode at 512x512 costs as much as 1.6 UNet steps.
LATENT_RGB = np.array(
    [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ],
    dtype=np.float32,
)


def latent_to_rgb(latent: np.ndarray) -> np.ndarray:
    """(1, 4, h, w) or (4, h, w) latent -> (h, w, 3) uint8 image at latent resolution."""
    channels = latent.reshape(-1, *latent.shape[-3:])[0].astype(np.float32)
    rgb = np.tensordot(channels, LATENT_RGB, axes=([0], [0]))
    return np.clip((rgb + 1.0) * 127.5, 0, 255).astype(np.uint8)


def preview_image(latent: np.ndarray, width: int, height: int) -> Image.Image | None:
    """A preview at the final image's size (nearest upscale of the 1/8-size approximation); None for latents
    that are not 4-channel [.., 4, h, w] (SD3, FLUX: no fitted map yet, docs/FAMILIES.md)."""
    if latent.ndim < 3 or latent.shape[-3] != LATENT_RGB.shape[0]:
        return None
    small = Image.fromarray(latent_to_rgb(latent))
    return small.resize((width, height), Image.Resampling.NEAREST)
