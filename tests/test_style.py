"""Style transfer's AdaIN step and strength mapping, on arrays."""

from __future__ import annotations

import numpy as np

from sdedge.engine.style import adain, img2img_strength


def test_adain_moves_channel_statistics_to_the_style() -> None:
    rng = np.random.default_rng(0)
    content = rng.normal(0.0, 1.0, (1, 4, 16, 16)).astype(np.float32)
    style = rng.normal(3.0, 0.25, (1, 4, 16, 16)).astype(np.float32)
    style[:, 2] += 5.0
    matched = adain(content, style, 1.0)
    assert np.allclose(matched.mean(axis=(-2, -1)), style.mean(axis=(-2, -1)), atol=1e-4)
    assert np.allclose(matched.std(axis=(-2, -1)), style.std(axis=(-2, -1)), atol=1e-3)
    # the layout survives: the matched latent is an affine map of the content, channel by channel
    assert np.corrcoef(matched[0, 0].ravel(), content[0, 0].ravel())[0, 1] > 0.999


def test_adain_strength_blends_linearly() -> None:
    rng = np.random.default_rng(1)
    content, style = rng.normal(size=(1, 4, 8, 8)), rng.normal(2.0, 3.0, (1, 4, 8, 8))
    assert np.allclose(adain(content, style, 0.0), content, atol=1e-6)
    half = adain(content, style, 0.5)
    assert np.allclose(half, (content + adain(content, style, 1.0)) / 2, atol=1e-5)


def test_more_content_strength_means_less_repainting() -> None:
    assert img2img_strength(1.0) == 0.0
    assert img2img_strength(0.0) == 0.6
    assert img2img_strength(0.3) > img2img_strength(0.7)
