"""The `sdedge` command line, in-process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURE_MODEL
from sdedge.cli import main


@pytest.fixture(autouse=True)
def _fixture_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STABLE_DIFFUSION_REPO_ID", str(FIXTURE_MODEL))
    monkeypatch.setenv("OPENVINO_DEVICE", "CPU")
    monkeypatch.setenv("MODELS_CACHE_DIR", str(tmp_path / "models"))


def test_generate_writes_a_png_with_its_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["generate", "a tree", "-o", "out/tree.png", "--seed", "11", "--steps", "2", "--width", "64",
            "--height", "96"]
    assert main(args) == 0
    image = Image.open(tmp_path / "out" / "tree.png")
    assert image.size == (64, 96) and "Seed: 11" in image.info["parameters"]
    assert "seed 11" in capsys.readouterr().out
    assert main([*args[:3], "out/again.png", *args[4:]]) == 0
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(tmp_path / "out" / "again.png")))


def test_generate_rejects_bad_input_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "x", "--width", "7"]) == 1
    assert "width" in capsys.readouterr().err


def test_invalid_setting_is_exit_2_naming_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PORT", "http")
    assert main(["generate", "x"]) == 2
    err = capsys.readouterr().err
    assert "PORT" in err and len(err.strip().splitlines()) == 1


def test_download_no_force_keeps_a_complete_local_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["download", "--no-force"]) == 0
    assert "already complete" in capsys.readouterr().out


def test_download_of_an_incomplete_local_folder_names_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "half").mkdir()
    monkeypatch.setenv("STABLE_DIFFUSION_REPO_ID", str(tmp_path / "half"))
    assert main(["download"]) == 1
    assert "unet/openvino_model.xml" in capsys.readouterr().err
