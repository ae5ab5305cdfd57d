"""`sdedge convert SRC OUT --hybrid-int8`: NNCF quantizes the tiny model's UNet convolutions to int8 (activations
too), calibrated on the model's own trajectories; OpenVINO then runs them as int8 kernels, the images stay
close to the weight-only model's and the server serves the copy."""

from __future__ import annotations

import io
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino_genai as g
import pytest
from PIL import Image

from conftest import FIXTURE_MODEL, make_settings, start_app
from sdedge.cli import main
from sdedge.convert import ConvertError
from sdedge.hybrid_int8 import (RECORD, Calibration, _Schedule, calibration_samples, quantize_hybrid_int8,
                                read_record)

SDXL = Path(__file__).parent / "fixtures" / "tiny-sdxl-int8-ov"
SMALL = Calibration(samples=8, size=64, steps=4)


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield quantize_hybrid_int8(FIXTURE_MODEL, tmp_path_factory.mktemp("hybrid") / "tiny-hybrid", SMALL).output


def convolution_kernels(model: Path) -> dict[str, int]:
    """runtime precision -> how many of the compiled UNet's convolutions run in it."""
    compiled = ov.Core().compile_model(str(model / "unet" / "openvino_model.xml"), "CPU")
    kinds: dict[str, int] = {}
    for node in compiled.get_runtime_model().get_ordered_ops():
        info = node.get_rt_info()
        if info["layerType"].astype(str) == "Convolution":
            precision = info["runtimePrecision"].astype(str)
            kinds[precision] = kinds.get(precision, 0) + 1
    return kinds


def image(model: Path, seed: int = 11) -> np.ndarray:
    out = g.Text2ImagePipeline(model, "CPU").generate("a red fox", width=64, height=64, num_inference_steps=3,
                                                      rng_seed=seed)
    return np.asarray(out.data, np.float32)


def test_the_convolutions_run_as_int8_kernels_and_the_matmuls_keep_their_weights(hybrid: Path) -> None:
    before, after = convolution_kernels(FIXTURE_MODEL), convolution_kernels(hybrid)
    assert set(before) <= {"f32", "bf16", "f16"}, before  # weight-only int8 computes convolutions in float
    assert set(after) <= {"u8", "i8"} and sum(after.values()) == 33, after  # every one of the UNet's 33
    record = read_record(hybrid)
    assert record is not None and record["method"] == "hybrid-int8" and record["convolutions_int8"] == 33
    assert record["matmuls_weight_only"] == 50 and record["calibration"]["samples"] == 8
    # the MatMul weights are the source's int8 bytes; only the UNet is new, the rest is hardlinked
    assert (hybrid / "text_encoder" / "openvino_model.bin").read_bytes() == \
        (FIXTURE_MODEL / "text_encoder" / "openvino_model.bin").read_bytes()
    assert read_record(FIXTURE_MODEL) is None


def test_images_stay_close_to_the_weight_only_model(hybrid: Path) -> None:
    source, quantized, other_seed = image(FIXTURE_MODEL), image(hybrid), image(FIXTURE_MODEL, seed=12)
    change = np.abs(source - quantized).mean()
    assert 0 < change < 0.25 * np.abs(source - other_seed).mean(), change


def test_the_unet_output_follows_the_source_on_calibration_inputs(hybrid: Path) -> None:
    core = ov.Core()
    source = core.compile_model(str(FIXTURE_MODEL / "unet" / "openvino_model.xml"), "CPU")
    quantized = core.compile_model(str(hybrid / "unet" / "openvino_model.xml"), "CPU")
    first = calibration_samples(FIXTURE_MODEL, source, Calibration(samples=2, size=64, steps=4), 7.5, True)
    for sample in first:
        x, y = np.asarray(source(sample)[0]), np.asarray(quantized(sample)[0])
        assert np.corrcoef(x.ravel(), y.ravel())[0, 1] > 0.95


def test_calibration_walks_guided_trajectories_of_the_asked_size() -> None:
    unet = ov.Core().compile_model(str(FIXTURE_MODEL / "unet" / "openvino_model.xml"), "CPU")
    samples = calibration_samples(FIXTURE_MODEL, unet, Calibration(samples=6, size=64, steps=4), 7.5, True)
    assert len(samples) == 6 and samples[0]["sample"].shape == (2, 4, 8, 8)
    assert [int(s["timestep"][0]) for s in samples[:4]] == [751, 501, 251, 1]  # leading spacing, offset 1
    assert int(samples[4]["timestep"][0]) == 751  # the second prompt starts its own trajectory
    assert not np.array_equal(samples[0]["encoder_hidden_states"], samples[4]["encoder_hidden_states"])
    unguided = calibration_samples(FIXTURE_MODEL, unet, Calibration(samples=1, size=64, steps=4), 1.0, False)
    assert unguided[0]["sample"].shape == (1, 4, 8, 8)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_a_ddim_step_to_the_end_recovers_the_clean_latent(tmp_path: Path, prediction: str) -> None:
    config = tmp_path / "scheduler_config.json"
    config.write_text(json.dumps({"prediction_type": prediction, "steps_offset": 1}))
    schedule = _Schedule.from_config(config)
    rng = np.random.default_rng(0)
    x0, noise, t = rng.standard_normal((1, 4, 8, 8)), rng.standard_normal((1, 4, 8, 8)), 501
    a = schedule.alphas[t]
    noisy = math.sqrt(a) * x0 + math.sqrt(1 - a) * noise
    out = noise if prediction == "epsilon" else math.sqrt(a) * noise - math.sqrt(1 - a) * x0
    assert np.allclose(schedule.step(noisy, out, t, -1), x0, atol=1e-4)


def test_the_server_serves_the_hybrid_copy_compiled_for_the_requested_size(tmp_path: Path, hybrid: Path) -> None:
    app = start_app(make_settings(tmp_path, stable_diffusion_repo_id=str(hybrid)))  # CPU_STATIC_SHAPES=auto
    client = app.test_client()
    response = client.post("/image", json={"prompt": "a red fox", "seed": 3, "width": 64, "height": 48,
                                           "num_inference_steps": 2})
    assert response.status_code == 200, response.get_json()
    png = Image.open(io.BytesIO(client.get(response.get_json()["urls"][0]).data))
    assert png.size == (64, 48) and np.asarray(png).std() > 0
    engine = app.extensions["sdedge"].worker.loaders[0].engine()
    assert engine.info()["compiled_shapes"] == ["64x48"]  # one size at a time on the CPU: the last one asked


@pytest.mark.parametrize(("model", "setting", "shapes"), [
    ("hybrid", "false", ["dynamic"]),
    ("weight-only", "true", ["64x64"]),
    ("weight-only", "auto", ["dynamic"]),
])
def test_cpu_static_shapes_follows_the_setting(tmp_path: Path, hybrid: Path, model: str, setting: str,
                                                shapes: list[str]) -> None:
    path = hybrid if model == "hybrid" else FIXTURE_MODEL
    app = start_app(make_settings(tmp_path, stable_diffusion_repo_id=str(path), cpu_static_shapes=setting))
    response = app.test_client().post("/image", json={"prompt": "x", "width": 64, "height": 64,
                                                      "num_inference_steps": 1})
    assert response.status_code == 200, response.get_json()
    assert app.extensions["sdedge"].worker.loaders[0].engine().info()["compiled_shapes"] == shapes


def test_the_command_writes_the_copy_and_refuses_what_it_cannot_do(tmp_path: Path, hybrid: Path,
                                                                    capsys: Any) -> None:
    out = tmp_path / "cli-hybrid"
    assert main(["convert", str(FIXTURE_MODEL), str(out), "--hybrid-int8", "--calibration-samples", "2",
                 "--calibration-size", "64", "--calibration-steps", "2"]) == 0
    said = capsys.readouterr().out
    assert "33 convolutions of the UNet compute in int8" in said and f"STABLE_DIFFUSION_REPO_ID={out}" in said
    assert (out / RECORD).is_file() and not (out.parent / f".{out.name}.partial").exists()
    assert main(["convert", str(FIXTURE_MODEL), str(out), "--hybrid-int8"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["convert", str(FIXTURE_MODEL), "--hybrid-int8"]) == 1  # no output folder
    assert "give OUTPUT" in capsys.readouterr().err


@pytest.mark.parametrize(("source", "calibration", "message"), [
    (SDXL, SMALL, "also takes"),
    (None, SMALL, "already hybrid int8"),
    (Path("foreign"), SMALL, "quantized already"),  # int8 activations without our record (optimum's hybrid)
    (FIXTURE_MODEL, Calibration(samples=8, size=60, steps=4), "multiple of 8"),
    (FIXTURE_MODEL, Calibration(samples=0, size=64, steps=4), "calibration-samples"),
])
def test_what_cannot_be_quantized_is_a_clear_error(tmp_path: Path, hybrid: Path, source: Path | None,
                                                   calibration: Calibration, message: str) -> None:
    if source == Path("foreign"):
        source = tmp_path / "foreign"
        shutil.copytree(hybrid, source)
        (source / RECORD).unlink()
    with pytest.raises(ConvertError, match=message):
        quantize_hybrid_int8(source or hybrid, tmp_path / "out", calibration)
    assert not (tmp_path / "out").exists()


def test_without_nncf_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    with pytest.raises(ConvertError, match=r"sdedge\[quantize\]"):
        quantize_hybrid_int8(FIXTURE_MODEL, tmp_path / "out", SMALL)
