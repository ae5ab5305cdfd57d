"""Samplers: our names, their aliases, and AUTOMATIC1111's names with the closest fallback."""

from __future__ import annotations

import pytest

from sdedge.samplers import canonical_sampler, from_a1111


def test_sampler_names_and_aliases() -> None:
    assert canonical_sampler("Euler a") == "euler_a"
    assert canonical_sampler("PLMS") == "pndm"
    assert canonical_sampler("dpm++ 2m") is None


@pytest.mark.parametrize(("name", "ours", "exact"), [
    ("Euler a", "euler_a", True), ("euler", "euler", True), ("PLMS", "pndm", True), ("LCM", "lcm", True),
    ("DPM++ 2M Karras", "euler_a", False), ("DDIM CFG++", "ddim", False), ("LMS Karras", "lms", False),
    (None, "ddim", True),
])
def test_sampler_mapping(name: str | None, ours: str, exact: bool) -> None:
    assert from_a1111(name, "ddim") == (ours, exact)
