"""Seeded noise: PyTorch's CPU randn reproduced without PyTorch."""

from __future__ import annotations

import numpy as np

from sdedge.rng import TorchRandn

# torch.randn((20,), generator=torch.Generator().manual_seed(0)), printed with torch 2.13 on CPU.
TORCH_SEED_0 = [-1.12584, -1.15236, -0.250579, -0.433879, 0.598839, -1.555095, -0.34136, 1.853006, 0.468096,
                -0.157712, 1.44366, 0.266049, 1.389366, 1.586334, 0.946298, -0.843677, 0.931827, 1.259009,
                2.004981, 0.053737]
# torch.randn((1, 4, 2, 2), generator=torch.Generator().manual_seed(2**32 - 1)).flatten()
TORCH_SEED_MAX = [-2.664298, -1.091049, 0.451447, 0.228361, 1.898618, 1.564209, -1.2554, 0.793644, -1.751495,
                  -0.709675, 1.218266, 0.222246, -2.515884, 0.483752, 0.841787, 0.14091]


def test_matches_torch_randn_values() -> None:
    assert np.allclose(TorchRandn(0).randn((20,)), TORCH_SEED_0, atol=1e-5)  # 20: the tail block is redrawn
    assert np.allclose(TorchRandn(2**32 - 1).randn((1, 4, 2, 2)).ravel(), TORCH_SEED_MAX, atol=1e-5)


def test_same_seed_same_noise_and_the_stream_continues() -> None:
    first, second = TorchRandn(5), TorchRandn(5)
    assert np.array_equal(first.randn((1, 4, 8, 8)), second.randn((1, 4, 8, 8)))
    assert not np.array_equal(first.randn((1, 4, 8, 8)), TorchRandn(5).randn((1, 4, 8, 8)))


def test_noise_is_standard_normal() -> None:
    sample = TorchRandn(1).randn((1, 4, 64, 64))
    assert sample.dtype == np.float32 and abs(sample.mean()) < 0.05 and abs(sample.std() - 1) < 0.05
