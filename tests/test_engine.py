"""The openvino-genai engine on the tiny fixture: determinism, steps, stopping, devices."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conftest import FIXTURE_MODEL
from sdedge.engine.devices import pick_device
from sdedge.engine.openvino import OpenVINOEngine
from sdedge.engine.params import GenerationParams, StepEvent
from sdedge.errors import GenerationCanceled


@pytest.fixture(scope="module")
def engine() -> OpenVINOEngine:
    return OpenVINOEngine(FIXTURE_MODEL, "CPU")


def params(**overrides: object) -> GenerationParams:
    values: dict[str, object] = {"prompt": "a boat", "negative_prompt": "", "width": 64, "height": 64,
                                 "steps": 4, "guidance_scale": 7.5, "sampler": "euler_a", "seed": 5}
    values.update(overrides)
    return GenerationParams(**values)  # type: ignore[arg-type]


def test_same_params_same_bytes(engine: OpenVINOEngine) -> None:
    first = engine.generate(params()).images[0].tobytes()
    assert first == engine.generate(params()).images[0].tobytes()
    assert first != engine.generate(params(seed=6)).images[0].tobytes()


def test_step_callback_sees_every_step_with_a_latent(engine: OpenVINOEngine) -> None:
    events: list[StepEvent] = []
    engine.generate(params(steps=4, num_images=2), lambda e: events.append(e) or False)
    assert [(e.image_index, e.step) for e in events] == [(i, s) for i in range(2) for s in range(1, 5)]
    assert events[-1].fraction == 1.0
    latent = events[0].latent
    assert latent is not None and latent.shape == (1, 4, 8, 8)


def test_returning_true_stops_before_the_last_step(engine: OpenVINOEngine) -> None:
    seen: list[int] = []

    def stop_at_two(event: StepEvent) -> bool:
        seen.append(event.step)
        return event.step >= 2

    with pytest.raises(GenerationCanceled):
        engine.generate(params(steps=20), stop_at_two)
    assert max(seen) <= 3  # genai's stop lands at most one step late


def test_a_stopped_run_carries_its_finished_images_and_last_latent(engine: OpenVINOEngine) -> None:
    with pytest.raises(GenerationCanceled) as stopped:  # stops in the second image, at its second step
        engine.generate(params(steps=4, num_images=2, width=96), lambda e: e.image_index == 1 and e.step >= 2)
    partial = stopped.value.partial
    assert [image.size for image in partial.images] == [(96, 64)] and partial.seeds == [5]
    assert partial.latent.shape == (1, 4, 8, 12) and partial.latent_seed == 6
    assert engine.decode_latent(partial.latent, params(width=96)).size == (96, 64)


def test_guidance_one_and_non_square_sizes(engine: OpenVINOEngine) -> None:
    out = engine.generate(params(guidance_scale=1.0, width=128, height=64))
    assert out.images[0].size == (128, 64)
    assert out.timings["unet_ms"] > 0


def test_missing_device_falls_back_to_cpu(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert pick_device("GPU") == "CPU"
        assert pick_device("NPU") == "CPU"
    assert "falling back to CPU" in caplog.text
    assert pick_device("AUTO") == "CPU"


def test_compile_cache_folder_is_used(tmp_path: Path) -> None:
    OpenVINOEngine(FIXTURE_MODEL, "CPU", properties={"CACHE_DIR": str(tmp_path / "cache")})
    assert any((tmp_path / "cache").iterdir())


def test_fast_decoder_uses_the_tiny_autoencoder_in_every_mode() -> None:
    from PIL import Image

    from sdedge.engine.params import ImageInputs

    fast = OpenVINOEngine(FIXTURE_MODEL, "CPU", fast_decoder=True)
    assert fast.info()["decoder"] == "tiny"
    full_image = OpenVINOEngine(FIXTURE_MODEL, "CPU").generate(params()).images[0]
    tiny_image = fast.generate(params()).images[0]
    assert tiny_image.size == full_image.size and tiny_image.tobytes() != full_image.tobytes()
    source, mask = Image.new("RGB", (64, 64), (90, 120, 200)), Image.new("L", (64, 64), 255)
    for mode in ("img2img", "inpaint"):
        out = fast.generate(params(mode=mode, strength=0.6), inputs=ImageInputs(image=source, mask=mask))
        assert out.images[0].size == (64, 64)


def test_fast_decoder_without_tiny_folders_falls_back_to_the_full_vae(tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(FIXTURE_MODEL, copy, ignore=shutil.ignore_patterns("*_tiny"))
    assert OpenVINOEngine(copy, "CPU", fast_decoder=True).info()["decoder"] == "full"


def test_timings_come_from_the_pipeline_that_ran() -> None:
    from PIL import Image

    from sdedge.engine.params import ImageInputs

    source = Image.new("RGB", (64, 64), (90, 120, 200))
    fresh = OpenVINOEngine(FIXTURE_MODEL, "CPU")  # its text-to-image pipeline never ran
    out = fresh.generate(params(mode="img2img", strength=0.5, steps=4), inputs=ImageInputs(image=source))
    assert out.timings["unet_ms"] > 0 and out.timings["generate_ms"] > 0
