"""Latent previews: shape, range, and cost next to a step."""

from __future__ import annotations


import numpy as np

from sdedge.engine.previews import latent_to_rgb, preview_image


def test_latent_to_rgb_shape_and_range() -> None:
    latent = np.random.default_rng(0).normal(size=(1, 4, 8, 12)).astype(np.float32)
    rgb = latent_to_rgb(latent)
    assert rgb.shape == (8, 12, 3) and rgb.dtype == np.uint8
    assert rgb.std() > 0


def test_channels_map_to_distinct_colours() -> None:
    first, last = np.zeros((4, 2, 2), np.float32), np.zeros((4, 2, 2), np.float32)
    first[0], last[3] = 2.0, 2.0
    assert latent_to_rgb(first)[0, 0].tolist() != latent_to_rgb(last)[0, 0].tolist()


def test_preview_is_upscaled_to_the_image_size() -> None:
    image = preview_image(np.zeros((1, 4, 64, 64), np.float32), 512, 512)
    assert image.size == (512, 512)
