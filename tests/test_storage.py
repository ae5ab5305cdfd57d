"""Generated image files: infotext, atomic writes, safe names."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from sdedge.engine import GenerationParams
from sdedge.storage import ImageStore, infotext

PARAMS = GenerationParams("a cat", "dog", 512, 768, 20, 7.5, "euler_a", 42)


def test_infotext_is_automatic1111_format() -> None:
    assert infotext(PARAMS, 42, "sd15") == (
        "a cat\nNegative prompt: dog\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x768, Model: sd15"
    )


def test_saved_png_carries_parameters(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    name = store.save("job-1-0", Image.new("RGB", (8, 8)), "hello")
    path = store.path(name)
    assert path is not None and Image.open(path).info["parameters"] == "hello"
    assert not list(tmp_path.glob(".*"))  # no partial file left behind


@pytest.mark.parametrize("name", ["../x.png", ".x.png", "a/b.png", "", "x\\y.png"])
def test_unsafe_names_are_not_served(tmp_path: Path, name: str) -> None:
    assert ImageStore(tmp_path).path(name) is None


def test_delete_removes_only_our_files(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "gen")
    name = store.save("job-2-0", Image.new("RGB", (8, 8)), "")
    (tmp_path / "outside.png").write_bytes(b"keep")
    store.delete([name, "../outside.png"])
    assert store.path(name) is None and (tmp_path / "outside.png").exists()
