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


def test_a_symlink_in_the_folder_is_never_followed(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "gen")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    (store.root / "job-3-0.png").symlink_to(secret)
    inside = store.save("job-4-0", Image.new("RGB", (8, 8)), "")
    (store.root / "job-5-0.png").symlink_to(store.root / inside)
    assert store.path("job-3-0.png") is None and store.path("job-5-0.png") is None
    assert store.path(inside) is not None


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from sdedge.errors import DiskFull

    store = FileStore(tmp_path)

    def no_space(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", no_space)
    with pytest.raises(DiskFull):
        store.save("job-6-0", Image.new("RGB", (8, 8)), "")
    assert not list(tmp_path.iterdir()) and store.last_disk_full is not None
