"""The PNG file store: atomic writes, safe names."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from sdedge.file_store import FileStore


def test_saved_png_carries_parameters(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    name = store.save("job-1-0", Image.new("RGB", (8, 8)), "hello")
    path = store.path(name)
    assert path is not None and Image.open(path).info["parameters"] == "hello"
    assert not list(tmp_path.glob(".*"))  # no partial file left behind


@pytest.mark.parametrize("name", ["../x.png", ".x.png", "a/b.png", "", "x\\y.png"])
def test_unsafe_names_are_not_served(tmp_path: Path, name: str) -> None:
    assert FileStore(tmp_path).path(name) is None


def test_delete_removes_only_our_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "gen")
    name = store.save("job-2-0", Image.new("RGB", (8, 8)), "")
    (tmp_path / "outside.png").write_bytes(b"keep")
    store.delete([name, "../outside.png"])
    assert store.path(name) is None and (tmp_path / "outside.png").exists()
