"""Request models: aliases, defaults, limits."""

from __future__ import annotations

import pytest

from sdedge.config import Settings
from sdedge.errors import InvalidRequest
from sdedge.request_schemas import GenerateRequest, ImageToImageRequest


def test_defaults_come_from_settings(settings: Settings) -> None:
    params = GenerateRequest(prompt="x").to_params(settings)
    assert (params.width, params.height, params.steps) == (64, 64, 3)
    assert params.sampler == "euler_a" and params.guidance_scale == 7.5 and 0 <= params.seed < 2**32


def test_lcm_defaults_to_few_steps_without_guidance(settings: Settings) -> None:
    params = GenerateRequest(prompt="x", sampler="LCM").to_params(settings)
    assert (params.steps, params.guidance_scale) == (4, 1.0)
    explicit = GenerateRequest(prompt="x", sampler="lcm", steps=8, guidance_scale=2.0).to_params(settings)
    assert (explicit.steps, explicit.guidance_scale) == (8, 2.0)


def test_one_side_follows_the_input_aspect(settings: Settings) -> None:
    request = ImageToImageRequest.model_validate({"prompt": "x", "init_image": "", "width": 128})
    params = request.to_params(settings, (64, 32))
    assert (params.width, params.height, params.mode) == (128, 64, "img2img")


def test_limits_name_every_bad_field(settings: Settings) -> None:
    with pytest.raises(InvalidRequest) as caught:
        GenerateRequest(prompt="x", width=4096, steps=1000).to_params(settings)
    assert {d["field"] for d in caught.value.details} == {"width", "num_inference_steps"}
