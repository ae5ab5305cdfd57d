"""AUTOMATIC1111 infotext written into our PNGs."""

from __future__ import annotations

from sdedge.engine.params import GenerationParams
from sdedge.infotext import infotext

PARAMS = GenerationParams("a cat", "dog", 512, 768, 20, 7.5, "euler_a", 42)


def test_infotext_is_automatic1111_format() -> None:
    assert infotext(PARAMS, 42, "sd15") == (
        "a cat\nNegative prompt: dog\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x768, Model: sd15"
    )
