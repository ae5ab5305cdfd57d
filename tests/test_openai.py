"""The OpenAI images API under /v1, driven by the official `openai` client against a real server."""

from __future__ import annotations

import base64
import io
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from PIL import Image

from sdedge.app import create_app
from sdedge.config import Settings
from sdedge.errors import GenerationError, QueueFull
from sdedge.routes.openai import openai_error
from serverproc import ServerProcess
from test_openapi_spec import check_response

MODEL = "tiny-sd-int8-ov"
FAST = {"num_inference_steps": 2}
RED = (200, 40, 40)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    loras = str(Path(__file__).parent / "fixtures" / "loras")  # read only
    proc = ServerProcess(tmp_path_factory.mktemp("openai"), OPENVINO_DEVICE="CPU", LORA_DIR=loras).start()
    proc.wait_ready()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key="not-needed", max_retries=0, timeout=120)


def decode(b64: str | None) -> Image.Image:
    assert b64
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def openai_mask() -> Image.Image:
    """OpenAI's convention: opaque keeps, fully transparent (alpha 0) is edited."""
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (16, 16, 48, 48))
    return mask


def test_generate_b64_json_is_reproducible(client: openai.OpenAI) -> None:
    first = client.images.generate(model="dall-e-2", prompt="a red fox", n=2, size="64x64",
                                   response_format="b64_json", extra_body={"seed": 7, **FAST})
    assert first.data and len(first.data) == 2 and first.size == "64x64" and first.output_format == "png"
    images = [decode(item.b64_json) for item in first.data]
    assert [image.size for image in images] == [(64, 64), (64, 64)]
    again = client.images.generate(prompt="a red fox", size="64x64", extra_body={"rng_seed": 8, **FAST})
    assert again.data and np.array_equal(np.asarray(decode(again.data[0].b64_json)), np.asarray(images[1]))


def test_generate_url_links_to_a_png(client: openai.OpenAI) -> None:
    result = client.images.generate(prompt="a blue bird", size="64x96", response_format="url", extra_body=FAST)
    assert result.data and result.data[0].url and result.data[0].b64_json is None
    with urllib.request.urlopen(result.data[0].url, timeout=30) as response:
        assert Image.open(io.BytesIO(response.read())).size == (64, 96)


def test_edit_with_mask_repaints_only_the_transparent_area(client: openai.OpenAI) -> None:
    source = png(Image.new("RGB", (64, 64), RED))
    result = client.images.edit(image=("in.png", source, "image/png"), mask=("mask.png", png(openai_mask()), "image/png"),
                                prompt="a window", size="64x64", n=1, response_format="b64_json",
                                extra_body={"strength": 1.0, "seed": 3, **FAST})
    assert result.data
    pixels = np.asarray(decode(result.data[0].b64_json).convert("RGB")).astype(int)
    assert np.abs(pixels[:8, :8] - RED).max() <= 2, "opaque mask areas must stay as they were"
    assert np.abs(pixels[24:40, 24:40] - RED).max() > 10, "transparent mask areas must change"


def test_edit_without_mask_is_image_to_image_at_the_upload_size(client: openai.OpenAI) -> None:
    source = png(Image.new("RGB", (64, 96), (10, 120, 200)))
    result = client.images.edit(image=("in.png", source, "image/png"), prompt="the sea",
                                extra_body={"strength": 0.5, **FAST})
    assert result.data and result.size == "64x96"
    assert decode(result.data[0].b64_json).size == (64, 96)


def test_variations_are_image_to_image_at_the_default_strength(client: openai.OpenAI, server: ServerProcess) -> None:
    source = png(Image.new("RGB", (64, 64), RED))
    result = client.images.create_variation(image=("in.png", source, "image/png"), n=2, size="64x64",
                                            response_format="b64_json", extra_body={"seed": 4, **FAST})
    images = [np.asarray(decode(item.b64_json).convert("RGB"), dtype=float) for item in result.data]
    assert len(images) == 2 and images[0].shape == (64, 64, 3) and not np.array_equal(images[0], images[1])
    status, jobs = server.request("GET", "/jobs?limit=1")
    assert jobs["jobs"][0]["type"] == "img2img" and jobs["jobs"][0]["result"]["parameters"]["strength"] == 0.6
    linked = client.images.create_variation(image=("in.png", source, "image/png"), response_format="url",
                                            extra_body={"strength": 0.3, **FAST})
    assert linked.data[0].url and linked.size == "64x64"  # no size: the upload's
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.create_variation(image=("in.png", b"not an image", "image/png"))
    assert refused.value.body["param"] == "image"  # type: ignore[index]


def test_models(client: openai.OpenAI, server: ServerProcess, doc: dict[str, Any]) -> None:
    assert [model.id for model in client.models.list()] == [MODEL]
    assert client.models.retrieve(MODEL).owned_by == "sdedge"
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-image-1")
    assert raised.value.code == "not_found" and raised.value.param == "model"
    status, body = server.request("GET", "/v1/models")
    check_response(doc, "/v1/models", "get", status, body)


@pytest.mark.parametrize(("fields", "param"), [
    ({"size": "64x60"}, "size"), ({"size": "large"}, "size"), ({"n": 9}, "n"),
    ({"extra_body": {"num_inference_steps": 0}}, "num_inference_steps"),
])
def test_errors_use_openais_shape(client: openai.OpenAI, fields: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(prompt="x", **fields)
    error = raised.value
    assert error.status_code == 400 and error.param == param and error.type == "invalid_request_error"
    assert isinstance(error.body, dict) and set(error.body) == {"message", "type", "param", "code"}


def test_raw_responses_match_the_document(server: ServerProcess, doc: dict[str, Any]) -> None:
    status, body = server.request("POST", "/v1/images/generations",
                                  {"prompt": "x", "size": "64x64", "response_format": "url", **FAST})
    assert status == 200
    check_response(doc, "/v1/images/generations", "post", status, body)
    for payload, raw, content_type in (({"size": "64x64"}, None, "application/json"),
                                       (None, b"not json", "text/plain")):
        status, body = server.request("POST", "/v1/images/generations", payload, raw=raw, content_type=content_type)
        assert status in (400, 415) and set(body["error"]) == {"message", "type", "param", "code"}
        check_response(doc, "/v1/images/generations", "post", status, body)
    status, body = server.request("POST", "/v1/images/edits", {"prompt": "x"})
    assert status == 415 and body["error"]["type"] == "invalid_request_error"
    check_response(doc, "/v1/images/edits", "post", status, body)


def test_edit_refuses_a_mask_of_another_size_and_a_non_image(client: openai.OpenAI) -> None:
    source = png(Image.new("RGB", (64, 64)))
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.edit(image=("in.png", source, "image/png"), mask=("m.png", png(Image.new("RGBA", (32, 32))),
                           "image/png"), prompt="x")
    assert raised.value.param == "mask"
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.edit(image=("in.png", b"not an image", "image/png"), prompt="x")
    assert raised.value.param == "image"


def test_failed_jobs_tell_the_openai_client_not_to_resubmit(settings: Settings) -> None:
    app = create_app(settings, load_model=False)
    try:
        with app.test_request_context():
            failed = openai_error(GenerationError("generation failed: boom"))
            full = openai_error(QueueFull("the queue is full", None, {"Retry-After": "3"}))
        assert failed.status_code == 500 and failed.headers["x-should-retry"] == "false"
        assert failed.get_json()["error"] == {"message": "generation failed: boom", "type": "server_error",
                                              "param": None, "code": "generation_failed"}
        assert full.status_code == 429 and full.headers["Retry-After"] == "3" and "x-should-retry" not in full.headers
        assert full.get_json()["error"]["type"] == "rate_limit_error"
    finally:
        app.extensions["sdedge"].shutdown()


def test_the_openai_client_sends_loras_and_presets_as_extra_body(client: openai.OpenAI) -> None:
    def image(**extra: Any) -> bytes:  # the pixels (the PNG's infotext names the LoRAs)
        result = client.images.generate(prompt="a red fox", size="64x64", extra_body={"seed": 4, **FAST, **extra})
        return Image.open(io.BytesIO(base64.b64decode(str(result.data[0].b64_json)))).convert("RGB").tobytes()

    plain = image()
    assert image(loras=[{"name": "tiny-kohya", "weight": 0}]) == plain
    assert image(loras=[{"name": "tiny-kohya", "weight": 1}]) != plain
    assert image(prompt_suffix_is_ignored=True) == plain  # unknown extras stay ignored
    with pytest.raises(openai.BadRequestError) as refused:
        image(preset="fast")  # SD 1.5's fast needs LCM-LoRA, which this LORA_DIR lacks
    assert "lcm-lora-sdv1-5" in str(refused.value) and refused.value.body["param"] == "preset"
    with pytest.raises(openai.BadRequestError) as refused:
        image(loras=[{"name": "tiny-sdxl", "weight": 1}])
    assert "tiny-sdxl" in str(refused.value) and refused.value.body["param"] == "loras"
