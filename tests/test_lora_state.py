"""LoRA readiness per model on the real engine: plain pipelines until a LoRA is asked for, plain again after
LORA_RELEASE_AFTER LoRA-free jobs, LoRA-ready from the start with LORA_PRELOAD."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURE_MODEL
from sdedge.engine.lora_state import LoraPolicy
from sdedge.engine.openvino import OpenVINOEngine
from sdedge.engine.params import GenerationParams, LoraWeight

LORAS = Path(__file__).parent / "fixtures" / "loras"
KOHYA = (LoraWeight("tiny-kohya", 1.0),)


def params(loras: tuple[LoraWeight, ...] = ()) -> GenerationParams:
    return GenerationParams(prompt="a boat", negative_prompt="", width=64, height=64, steps=2, guidance_scale=7.5,
                            sampler="euler_a", seed=5, loras=loras)


def engine(policy: LoraPolicy) -> OpenVINOEngine:
    return OpenVINOEngine(FIXTURE_MODEL, "CPU", lora_dir=LORAS, lora_policy=policy)


def pixels(engine: OpenVINOEngine, loras: tuple[LoraWeight, ...] = ()) -> bytes:
    return engine.generate(params(loras)).images[0].tobytes()


@pytest.fixture(scope="module")
def plain_image() -> bytes:
    return pixels(OpenVINOEngine(FIXTURE_MODEL, "CPU"))


@pytest.fixture(scope="module")
def lora_image() -> bytes:
    return pixels(engine(LoraPolicy(preload=True)), KOHYA)


def test_a_model_runs_plain_until_a_lora_is_asked_for(plain_image: bytes, lora_image: bytes) -> None:
    lazy = engine(LoraPolicy(release_after=2))
    assert lazy.info()["lora"] is True and lazy.info()["lora_ready"] is False
    assert pixels(lazy) == plain_image  # bit for bit the pipeline without adapters
    assert pixels(lazy, (LoraWeight("tiny-kohya", 0.0),)) == plain_image  # weight 0 needs no rebuild
    assert lazy.info()["lora_ready"] is False
    assert pixels(lazy, KOHYA) == lora_image  # rebuilt LoRA-ready: the same image as a preloaded engine's
    assert lazy.info()["lora_ready"] is True


def test_it_goes_back_to_plain_after_release_after_lora_free_jobs(plain_image: bytes, lora_image: bytes) -> None:
    lazy = engine(LoraPolicy(release_after=2))
    assert pixels(lazy, KOHYA) == lora_image
    pixels(lazy), pixels(lazy)
    assert lazy.info()["lora_ready"] is True  # two LoRA-free jobs still run LoRA-ready
    assert pixels(lazy) == plain_image  # the third is plain again
    assert lazy.info()["lora_ready"] is False
    assert pixels(lazy, KOHYA) == lora_image  # and a LoRA still applies in full after the round trip


def test_by_default_the_first_lora_free_job_is_plain_again(plain_image: bytes, lora_image: bytes) -> None:
    lazy = engine(LoraPolicy())
    assert pixels(lazy, KOHYA) == lora_image
    assert pixels(lazy) == plain_image and lazy.info()["lora_ready"] is False


def test_preload_stays_lora_ready(lora_image: bytes) -> None:
    kept = engine(LoraPolicy(preload=True, release_after=1))
    assert kept.info()["lora_ready"] is True
    for _ in range(3):
        pixels(kept)
    assert pixels(kept, KOHYA) == lora_image and kept.info()["lora_ready"] is True
