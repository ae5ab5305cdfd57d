"""Fitting inputs to the output size, masks, and the inpainting composite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_settings
from sdedge.config import Settings
from sdedge.image_fitting import composite, default_size, fit_to_size, prepare_mask


@pytest.fixture
def limits(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_image_bytes=200_000, max_input_pixels=1_000_000)


@pytest.mark.parametrize("mode", ["crop", "fit", "stretch"])
def test_fit_to_size_gives_the_exact_size(mode: str) -> None:
    assert fit_to_size(Image.new("RGB", (300, 100)), 64, 96, mode).size == (64, 96)


def test_default_size_keeps_the_aspect(limits: Settings) -> None:
    assert default_size(Image.new("RGB", (1000, 500)), limits) == (64, 32)


def test_mask_of_another_size_is_resized_and_inverted() -> None:
    mask = Image.new("L", (10, 10), 0)
    mask.paste(255, (0, 0, 5, 10))
    prepared = prepare_mask(mask, (40, 40), 40, 40, "crop", blur=0, invert=True)
    assert prepared.size == (40, 40) and prepared.getpixel((5, 5)) == 0 and prepared.getpixel((35, 5)) == 255


def test_composite_keeps_unmasked_pixels_exactly() -> None:
    original = Image.effect_noise((32, 32), 80).convert("RGB")
    generated = Image.new("RGB", (32, 32), (1, 2, 3))
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (8, 8, 24, 24))
    out = np.asarray(composite(original, generated, mask))
    keep = np.asarray(mask) == 0
    assert np.array_equal(out[keep], np.asarray(original)[keep])
    assert (out[~keep] == (1, 2, 3)).all()
