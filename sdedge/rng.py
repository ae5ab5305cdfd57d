"""Seeded noise that matches PyTorch's CPU `torch.randn`, without PyTorch.

openvino-genai's own `TorchGenerator` imports torch at run time, and the server must not depend on
torch. This generator reproduces torch's algorithm (MT19937 seeded like `manual_seed`, 24-bit
uniforms, Box-Muller over blocks of 16), so a seed gives the same latents as diffusers and
AUTOMATIC1111 (to float rounding of log/cos, about 1e-6), and is deterministic on every machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_BLOCK = 16


class TorchRandn:
    """A `torch.Generator` stand-in: `randn(shape)` draws as `torch.randn(shape, generator=g)` does."""

    def __init__(self, seed: int) -> None:
        self._bits = np.random.MT19937()
        self._bits._legacy_seeding(seed & 0xFFFFFFFF)  # the classic init_genrand, as torch's mt19937

    def _uniform(self, count: int) -> np.ndarray:
        raw = self._bits.random_raw(count).astype(np.uint64)
        return ((raw & 0xFFFFFF).astype(np.float64) / float(1 << 24)).astype(np.float32)

    def randn(self, shape: tuple[int, ...]) -> np.ndarray:
        """Standard normal float32 samples of this shape."""
        size = int(np.prod(shape))
        if size < _BLOCK:  # torch uses another (serial) path here; genai only asks for latent-sized noise
            return self.randn((_BLOCK,))[:size].reshape(shape)
        data = self._uniform(size)
        full = size - size % _BLOCK
        data[:full] = _box_muller(data[:full].reshape(-1, _BLOCK)).ravel()
        if size % _BLOCK:  # torch redraws the last 16 values when the size is not a multiple of 16
            data[size - _BLOCK:] = _box_muller(self._uniform(_BLOCK).reshape(1, _BLOCK)).ravel()
        return data.reshape(shape)


def _box_muller(blocks: np.ndarray) -> np.ndarray:
    """torch's normal_fill_16 on rows of 16 uniforms: the first 8 pair with the last 8."""
    u1 = np.float32(1.0) - blocks[:, :8]
    u2 = blocks[:, 8:]
    radius = np.sqrt(np.float32(-2.0) * np.log(u1))
    theta = (2.0 * np.pi * u2.astype(np.float64)).astype(np.float32)
    return np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1).astype(np.float32)


def genai_generator(seed: int) -> Any:
    """An openvino_genai.Generator drawing latents like torch.randn with this seed."""
    import openvino as ov
    import openvino_genai as ov_genai

    class _Generator(ov_genai.Generator):
        def __init__(self) -> None:
            super().__init__()
            self._rng = TorchRandn(seed)

        def next(self) -> float:
            return float(self._rng.randn((1,))[0])

        def randn_tensor(self, shape: Any) -> Any:
            return ov.Tensor(self._rng.randn(tuple(int(d) for d in shape)))

    return _Generator()
