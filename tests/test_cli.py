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


def test_generate_with_preset_lora_and_n_shows_a_progress_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    loras = tmp_path / "loras"
    loras.mkdir()
    fixtures = FIXTURE_MODEL.parent / "loras"
    shutil.copy(fixtures / "tiny-kohya.safetensors", loras / "tiny-kohya.safetensors")
    shutil.copy(fixtures / "tiny-lcm-layout.safetensors", loras / "lcm-lora-sdv1-5.safetensors")
    monkeypatch.setenv("LORA_DIR", str(loras))
    args = ["generate", "a tree", "-o", "fast.png", "--seed", "5", "--width", "64", "--height", "64",
            "--preset", "fast", "--lora", "tiny-kohya:0.5", "-n", "2"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "8/8" in captured.err and "step/s" in captured.err  # tqdm: 2 images x 4 steps, with a rate
    text = Image.open(tmp_path / "fast.png").info["parameters"]
    assert "Steps: 4, Sampler: LCM, CFG scale: 1.0" in text and "Decoder: tiny" in text
    assert "<lora:tiny-kohya:0.5>" in text and "lcm-lora-sdv1-5: " in text
    assert (tmp_path / "fast-1.png").is_file() and "Seed: 6" in Image.open(tmp_path / "fast-1.png").info["parameters"]


def test_generate_img2img_and_inpaint_from_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "in.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    mask.save(tmp_path / "mask.png")
    common = ["--seed", "1", "--steps", "3", "--no-progress", "--width", "64", "--height", "64"]
    assert main(["generate", "a cat", "-o", "i2i.png", "--init-image", "in.png", "--strength", "0.6", *common]) == 0
    assert main(["generate", "a cat", "-o", "inp.png", "--init-image", "in.png", "--mask", "mask.png", *common]) == 0
    inpainted = np.asarray(Image.open(tmp_path / "inp.png"))
    assert np.array_equal(inpainted[:, 48:], np.asarray(Image.open(tmp_path / "in.png"))[:, 48:])  # kept outside
    assert Image.open(tmp_path / "i2i.png").size == (64, 64)
    assert main(["generate", "x", "--mask", "mask.png"]) == 1
    assert main(["generate", "x", "--lora", "nope:1", "--steps", "1", "--width", "64", "--height", "64"]) == 1
    assert "nope" in capsys.readouterr().err
