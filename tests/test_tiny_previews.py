"""Live previews through the tiny autoencoder: full size, the decoder's own image, the budget, no harm done."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURE_MODEL, make_settings, start_app, wait_for
from sdedge.engine.openvino import OpenVINOEngine
from sdedge.engine.params import GenerationParams, StepEvent
from sdedge.engine.tiny_previews import LivePreviews, PreviewBudget, TinyDecoder


@pytest.fixture(scope="module")
def engine() -> OpenVINOEngine:
    return OpenVINOEngine(FIXTURE_MODEL, "CPU", fast_decoder=False, tiny_previews=True)


def params(**overrides: object) -> GenerationParams:
    values: dict[str, object] = {"prompt": "a lighthouse", "negative_prompt": "", "width": 96, "height": 64,
                                 "steps": 6, "guidance_scale": 7.5, "sampler": "euler_a", "seed": 11}
    values.update(overrides)
    return GenerationParams(**values)  # type: ignore[arg-type]


class Clock:
    """A clock the test moves: a step costs `step` seconds, a decode what its decoder says."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingDecoder:
    """The real tiny decoder, recording what it decoded; decoding costs `cost` seconds of the test's clock."""

    def __init__(self, real: TinyDecoder, clock: Clock | None = None, cost: float = 0.0) -> None:
        self.real, self.clock, self.cost = real, clock, cost
        self.decoded: list[tuple[np.ndarray, Image.Image]] = []

    def decode(self, latent: np.ndarray) -> Image.Image:
        image = self.real.decode(latent)
        if self.clock is not None:
            self.clock.now += self.cost  # artificially expensive, without waiting for it
        self.decoded.append((latent, image))
        return image

    def estimate(self, latent: np.ndarray) -> float:
        return self.cost if self.clock is not None else self.real.estimate(latent)


class FailingDecoder(CountingDecoder):
    def decode(self, latent: np.ndarray) -> Image.Image:
        raise RuntimeError("decoder exploded")


def run(engine: OpenVINOEngine, live: LivePreviews, p: GenerationParams, clock: Clock | None = None,
        lockstep: bool = False) -> Image.Image:
    """Generate, offering every step's latent as the worker does (one step = 1 s of the test clock)."""
    def on_step(event: StepEvent) -> bool:
        if clock is not None:
            clock.now += 1.0
        assert event.latent is not None
        live.offer(event.latent)
        if lockstep:  # the test's own order: the preview thread decides on each latent before the next step
            wait_for(lambda: live.handled == live.offered, timeout=30)
        return False

    image = engine.generate(p, on_step).images[0]
    wait_for(lambda: live.handled == live.offered - live.replaced, timeout=30)
    return image


def test_a_tiny_preview_has_the_image_size_and_is_the_tiny_decoders_image(engine: OpenVINOEngine) -> None:
    assert engine.preview_decoder is not None
    decoder = CountingDecoder(engine.preview_decoder)
    shown: list[Image.Image] = []
    live = LivePreviews(decoder, 1.0, 96, 64, shown.append)
    final = run(engine, live, params(), lockstep=True)
    live.close()
    assert decoder.decoded and shown, "no tiny preview was drawn"
    latent, image = decoder.decoded[-1]
    assert shown[-1] is image and image.size == final.size == (96, 64)
    reference = engine.decode_latent(latent, params(decoder="tiny"))  # genai's tiny pipeline, same latent
    difference = np.abs(np.asarray(image, np.int16) - np.asarray(reference, np.int16))
    assert difference.max() <= 2, difference.max()
    blocks = np.asarray(image)[:8, :8].reshape(-1, 3)
    assert len(np.unique(blocks, axis=0)) > 1  # not the cheap map's nearest-upscaled 8x8 cells


def test_the_budget_skips_previews_when_decoding_is_expensive(engine: OpenVINOEngine) -> None:
    assert engine.preview_decoder is not None
    clock = Clock()
    expensive = CountingDecoder(engine.preview_decoder, clock, cost=0.5)  # half a step per preview
    live = LivePreviews(expensive, 0.1, 96, 64, lambda image: None, clock=clock)
    run(engine, live, params(steps=20), clock, lockstep=True)
    live.close()
    assert live.budget.spent <= 0.1 * clock.now  # 20 s of steps: at most 2 s of decoding
    assert 1 <= len(expensive.decoded) <= 4 and live.budget.skipped == live.offered - len(expensive.decoded)
    cheap = CountingDecoder(engine.preview_decoder, Clock(), cost=0.0)
    live = LivePreviews(cheap, 0.1, 96, 64, lambda image: None, clock=clock)
    run(engine, live, params(steps=20), clock, lockstep=True)
    live.close()
    # genai drops pending step callbacks of a run whose callback is slow (lockstep makes it so; 6-20 of 20
    # arrive depending on load): count what was offered, and ask only for several
    assert len(cheap.decoded) == live.offered >= 3 and live.budget.skipped == 0  # free decodes: one per offer


def test_budget_counts_per_job() -> None:
    clock = Clock()
    budget = PreviewBudget(0.25, clock)
    assert not budget.allows(0.5)
    clock.now = 2.0
    assert budget.allows(0.5)
    budget.charge(0.5)
    assert not budget.allows(0.5) and budget.share == 0.25
    assert PreviewBudget(0.25, clock).allows(0.0) and not PreviewBudget(0.25, clock).allows(0.1)  # a new job


def test_a_failing_decoder_never_reaches_genai_and_previews_go_on(engine: OpenVINOEngine) -> None:
    assert engine.preview_decoder is not None
    shown: list[Image.Image] = []
    live = LivePreviews(FailingDecoder(engine.preview_decoder), 1.0, 96, 64, shown.append)
    final = run(engine, live, params(), lockstep=True)  # generate() re-raises what its callback caught
    live.close()
    assert final.size == (96, 64) and live.failed
    assert shown and all(image.size == (96, 64) for image in shown)  # the cheap previews stand in
    assert live.budget.decoded == 0


def test_a_sink_that_raises_stays_on_the_preview_thread(engine: OpenVINOEngine) -> None:
    assert engine.preview_decoder is not None

    def broken_sink(image: Image.Image) -> None:
        raise OSError("disk full")

    live = LivePreviews(CountingDecoder(engine.preview_decoder), 1.0, 96, 64, broken_sink)
    final = run(engine, live, params(), lockstep=True)
    live.close()
    assert final.size == (96, 64) and live.handled == live.offered and live.sunk == 0
    assert live.budget.decoded >= 1  # a preview that could not be written still counts against the budget


def test_approx_for_a_model_without_the_tiny_decoder_and_for_wide_latents(tmp_path: Path,
                                                                          engine: OpenVINOEngine) -> None:
    copy = tmp_path / "model"
    shutil.copytree(FIXTURE_MODEL, copy, ignore=shutil.ignore_patterns("*_tiny"))
    plain = OpenVINOEngine(copy, "CPU", tiny_previews=True)
    assert plain.preview_decoder is None and plain.info()["previews"] == "approx"
    assert engine.info()["previews"] == "tiny"
    assert LivePreviews.for_job(plain, "tiny", 0.1, 64, 64, lambda image: None) is None
    assert LivePreviews.for_job(engine, "approx", 0.1, 64, 64, lambda image: None) is None
    live = LivePreviews.for_job(engine, "tiny", 0.1, 64, 64, lambda image: None)
    assert live is not None
    live.close()
    assert not LivePreviews.fits(np.zeros((1, 16, 8, 8), np.float32))  # SD3/FLUX latents: the cheap map
    assert LivePreviews.fits(np.zeros((1, 4, 8, 8), np.float32))


def test_a_job_shows_a_full_size_tiny_preview_while_it_runs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, preview_decoder="tiny", preview_budget=0.5, preview_min_interval_ms=0)
    client = start_app(settings).test_client()
    job: dict[str, Any] = client.post("/generate/text2img", json={"prompt": "a lighthouse", "width": 512,
                                                                  "height": 384, "steps": 100}).get_json()

    def tiny_preview() -> Image.Image | None:
        url = client.get(f"/jobs/{job['id']}?images=urls").get_json().get("preview_url")
        body = client.get(url).data if url else b""
        image = Image.open(io.BytesIO(body)).convert("RGB") if body else None
        cell = np.asarray(image)[:8, :8].reshape(-1, 3) if image else None
        return image if cell is not None and len(np.unique(cell, axis=0)) > 1 else None  # not an 8x8 cell

    image = wait_for(tiny_preview, timeout=120)
    assert image.size == (512, 384)
    client.post(f"/jobs/{job['id']}/cancel")
