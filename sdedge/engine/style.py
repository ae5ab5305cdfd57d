"""Style transfer in latent space: VAE-encode content and style, match statistics (AdaIN), decode.

AdaIN moves each latent channel of the content to the style's mean and standard deviation; the
decoded result then goes through image-to-image so the model repaints it coherently.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sdedge.engine import devices

EPSILON = 1e-5


def adain(content: np.ndarray, style: np.ndarray, strength: float) -> np.ndarray:
    """Content latents with per-channel mean/std moved towards the style's, blended by strength 0..1."""
    axes = (-2, -1)
    c_mean, c_std = content.mean(axis=axes, keepdims=True), content.std(axis=axes, keepdims=True) + EPSILON
    s_mean, s_std = style.mean(axis=axes, keepdims=True), style.std(axis=axes, keepdims=True) + EPSILON
    matched = (content - c_mean) / c_std * s_std + s_mean
    return ((1.0 - strength) * content + strength * matched).astype(np.float32)


def img2img_strength(content_strength: float) -> float:
    """Denoising strength of the final pass: more content kept means less repainting (0.6 at most)."""
    return round(0.6 * (1.0 - min(max(content_strength, 0.0), 1.0)), 4)


def to_vae_input(image: Image.Image) -> np.ndarray:
    """RGB image -> (1, 3, H, W) float32 in [-1, 1], the VAE encoder's input."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return pixels.transpose(2, 0, 1)[None]


class VaeEncoder:
    """The model folder's VAE encoder IR, compiled on first use."""

    def __init__(self, model_path: Path, device: str, properties: dict[str, Any], scaling_factor: float) -> None:
        self.path = model_path / "vae_encoder" / "openvino_model.xml"
        self.device, self.properties, self.scaling_factor = device, properties, scaling_factor
        self._compiled: Any = None
        self._lock = threading.Lock()

    def encode(self, image: Image.Image) -> np.ndarray:
        """Scaled latent mean (1, 4, H/8, W/8), as the UNet and genai's decode expect."""
        with self._lock:
            if self._compiled is None:
                import openvino as ov

                device = devices.compile_device(self.device)
                self._compiled = ov.Core().compile_model(self.path, device, self.properties)
            moments = self._compiled(to_vae_input(image))[0]
        return np.asarray(moments[:, :4] * self.scaling_factor, dtype=np.float32)
