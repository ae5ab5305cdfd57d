"""The Stability AI stand-in answers as the documented API does: images, JSON, and every error shape."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from clients.http import Reply, call, multipart, png
from standins.stability import StabilityStandIn

KEY = {"Authorization": "Bearer sk-test"}


@pytest.fixture
def api() -> Iterator[StabilityStandIn]:
    with StabilityStandIn(rate_limit=50) as standin:
        yield standin


def v2(api: StabilityStandIn, service: str = "core", fields: dict[str, str] | None = None,
       files: dict[str, tuple[str, bytes, str]] | None = None, accept: str = "image/*",
       headers: dict[str, str] | None = None) -> Reply:
    body, kind = multipart({"prompt": "a lighthouse", **(fields or {})}, files or {})
    sent = {**KEY, "Accept": accept, "Content-Type": kind, **(headers or {})}
    return call("POST", f"{api.base_url}/v2beta/stable-image/generate/{service}", data=body, headers=sent)


def v1(api: StabilityStandIn, body: dict[str, Any], engine: str = "stable-diffusion-v1-6",
       accept: str = "application/json", headers: dict[str, str] | None = None) -> Reply:
    return call("POST", f"{api.base_url}/v1/generation/{engine}/text-to-image", json_body=body,
                headers={**KEY, "Accept": accept, **(headers or {})})


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def test_v2_image_answer_is_deterministic_png_with_headers(api: StabilityStandIn) -> None:
    first = v2(api, fields={"seed": "42"})
    again = v2(api, fields={"seed": "42"})
    other = v2(api, fields={"seed": "43"})
    assert first.status == 200 and first.content_type == "image/png"
    assert first.headers["finish-reason"] == "SUCCESS" and first.headers["seed"] == "42"
    assert first.headers["x-request-id"]
    assert first.body == again.body != other.body
    assert size_of(first.body) == (64, 64)  # 1024x1024 at the stand-in's 1/16 scale


def test_v2_json_answer_and_aspect_ratio_and_format(api: StabilityStandIn) -> None:
    reply = v2(api, "sd3", {"aspect_ratio": "16:9", "model": "sd3.5-medium", "output_format": "jpeg"},
               accept="application/json")
    body = reply.json()
    assert reply.status == 200 and set(body) == {"image", "finish_reason", "seed"}
    assert body["finish_reason"] == "SUCCESS" and body["seed"] > 0  # seed 0 (absent) means random
    image = base64.b64decode(body["image"])
    assert image.startswith(b"\xff\xd8") and size_of(image) == (84, 48)


def test_v2_image_to_image_keeps_the_input_size(api: StabilityStandIn) -> None:
    files = {"image": ("in.png", png(96, 64), "image/png")}
    reply = v2(api, "sd3", {"mode": "image-to-image", "strength": "0.6"}, files)
    assert reply.status == 200 and size_of(reply.body) == (96, 64)
    assert api.received[-1].fields["mode"] == "image-to-image" and api.received[-1].files["image"]
    missing = v2(api, "sd3", {"mode": "image-to-image"}, files)
    assert missing.status == 400 and missing.json()["errors"] == ["strength: is required for image-to-image"]


@pytest.mark.parametrize("headers, message", [({"Authorization": ""}, "missing authorization header"),
                                              ({"Authorization": "Bearer sk-wrong"}, "Incorrect API key provided")])
def test_v2_bad_key_is_401(api: StabilityStandIn, headers: dict[str, str], message: str) -> None:
    reply = v2(api, headers=headers)
    body = reply.json()
    assert reply.status == 401 and body["name"] == "unauthorized" and body["errors"] == [message] and body["id"]


def test_v2_bad_parameters_are_400_with_every_problem(api: StabilityStandIn) -> None:
    reply = v2(api, "sd3", {"prompt": "", "aspect_ratio": "7:3", "model": "sd9"})
    body = reply.json()
    assert reply.status == 400 and body["name"] == "bad_request"
    assert [e.split(":")[0] for e in body["errors"]] == ["prompt", "aspect_ratio", "model"]
    as_json = call("POST", f"{api.base_url}/v2beta/stable-image/generate/core", json_body={"prompt": "x"},
                   headers=KEY)
    assert as_json.status == 400 and "multipart" in as_json.json()["errors"][0]
    assert v2(api, accept="text/html").status == 400
    assert v2(api, fields={"seed": "4294967295"}).status == 400


@pytest.mark.parametrize("prompt, status, name", [("something forbidden", 403, "content_moderation"),
                                                  ("nicht-englisch bitte", 422, "invalid_language"),
                                                  ("explode", 500, "internal_error")])
def test_v2_prompt_triggered_errors(api: StabilityStandIn, prompt: str, status: int, name: str) -> None:
    reply = v2(api, fields={"prompt": prompt})
    assert reply.status == status and reply.json()["name"] == name and reply.json()["errors"]
    assert api.credits() == 100.0  # refused requests cost nothing


def test_v2_content_filtered_is_a_blurred_success(api: StabilityStandIn) -> None:
    reply = v2(api, fields={"prompt": "a filtered scene", "seed": "5"})
    assert reply.status == 200 and reply.headers["finish-reason"] == "CONTENT_FILTERED"


def test_v2_rate_limit_credits_and_size_limits() -> None:
    with StabilityStandIn(rate_limit=2, keys={"sk-test": 5.0}) as api:
        assert v2(api).status == 200 and api.credits() == 2.0  # core costs 3 credits
        assert v2(api).status == 402
        limited = v2(api)
        assert limited.status == 429 and limited.json()["name"] == "rate_limit_exceeded"
        big = v2(api, files={"image": ("big.png", b"\0" * (10 * 1024 * 1024 + 1), "image/png")})
        assert big.status == 413 and big.json()["name"] == "payload_too_large"


def test_v1_text_to_image_artifacts(api: StabilityStandIn) -> None:
    body = {"text_prompts": [{"text": "A lighthouse on a cliff"}, {"text": "fog", "weight": -1}],
            "cfg_scale": 7, "height": 512, "width": 768, "samples": 2, "steps": 30, "seed": 10}
    reply = v1(api, body)
    artifacts = reply.json()["artifacts"]
    assert reply.status == 200 and [a["seed"] for a in artifacts] == [10, 11]
    assert all(a["finishReason"] == "SUCCESS" for a in artifacts)
    assert size_of(base64.b64decode(artifacts[0]["base64"])) == (48, 32)
    assert api.received[-1].json == body
    raw = v1(api, {**body, "samples": 1}, accept="image/png")
    assert raw.content_type == "image/png" and raw.headers["seed"] == "10" and raw.headers["finish-reason"] == "SUCCESS"


@pytest.mark.parametrize("body, accept, status, name", [
    ({"text_prompts": []}, "application/json", 400, "bad_request"),
    ({"text_prompts": [{"text": "x"}], "width": 500}, "application/json", 400, "invalid_height_or_width"),
    ({"text_prompts": [{"text": "x"}], "samples": 2}, "image/png", 400, "invalid_samples"),
    ({"text_prompts": [{"text": "x"}], "steps": 5}, "application/json", 400, "bad_request"),
])
def test_v1_errors_use_the_message_shape(api: StabilityStandIn, body: dict[str, Any], accept: str, status: int,
                                         name: str) -> None:
    reply = v1(api, body, accept=accept)
    answer = reply.json()
    assert reply.status == status and answer["name"] == name and set(answer) == {"id", "name", "message"}


def test_v1_unknown_engine_missing_key_and_listings(api: StabilityStandIn) -> None:
    missing = v1(api, {"text_prompts": [{"text": "x"}]}, engine="some-fake-engine")
    assert missing.status == 404 and "some-fake-engine" in missing.json()["message"]
    unauthorized = v1(api, {"text_prompts": [{"text": "x"}]}, headers={"Authorization": ""})
    assert unauthorized.status == 401 and unauthorized.json()["message"] == "missing authorization header"
    balance = call("GET", f"{api.base_url}/v1/user/balance", headers=KEY).json()
    engines = call("GET", f"{api.base_url}/v1/engines/list", headers=KEY).json()
    assert isinstance(balance["credits"], float) and {"id", "name", "description", "type"} <= set(engines[0])


def test_v1_image_to_image_form(api: StabilityStandIn) -> None:
    fields = {"text_prompts[0][text]": "A dog space commander", "text_prompts[0][weight]": "1",
              "init_image_mode": "IMAGE_STRENGTH", "image_strength": "0.35", "seed": "3"}
    body, kind = multipart(fields, {"init_image": ("init.png", png(64, 96), "image/png")})
    reply = call("POST", f"{api.base_url}/v1/generation/stable-diffusion-v1-6/image-to-image", data=body,
                 headers={**KEY, "Content-Type": kind, "Accept": "application/json"})
    artifact = reply.json()["artifacts"][0]
    assert reply.status == 200 and artifact["seed"] == 3
    assert size_of(base64.b64decode(artifact["base64"])) == (64, 96)


def test_v2_inpaint_repaints_only_the_mask_and_keeps_the_size(api: StabilityStandIn) -> None:
    image = Image.new("RGB", (96, 64), "#204080")
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (0, 0, 48, 64))  # the left half repaints
    files = {"image": ("in.png", _png(image), "image/png"), "mask": ("mask.png", _png(mask), "image/png")}
    reply = call("POST", f"{api.base_url}/v2beta/stable-image/edit/inpaint", data=None, headers={})
    assert reply.status == 401 and reply.json()["name"] == "unauthorized"
    body, kind = multipart({"prompt": "a red door", "seed": "7", "grow_mask": "3"}, files)
    reply = call("POST", f"{api.base_url}/v2beta/stable-image/edit/inpaint", data=body,
                 headers={**KEY, "Accept": "image/*", "Content-Type": kind})
    assert reply.status == 200 and reply.headers["seed"] == "7" and reply.headers["finish-reason"] == "SUCCESS"
    with Image.open(io.BytesIO(reply.body)) as out:
        assert out.size == (96, 64)
        assert out.convert("RGB").getpixel((90, 30)) == (0x20, 0x40, 0x80)  # outside the mask: kept
        assert out.convert("RGB").getpixel((10, 30)) != (0x20, 0x40, 0x80)
    assert api.received[-1].fields["grow_mask"] == "3"


@pytest.mark.parametrize("fields, files, message", [
    ({"prompt": "x"}, {}, "image: is required"),
    ({"prompt": ""}, {"image": True}, "prompt: cannot be empty"),
    ({"prompt": "x", "grow_mask": "21"}, {"image": True, "mask": True}, "grow_mask: must be between 0 and 20"),
    ({"prompt": "x"}, {"image": True}, "mask: is required when the image has no alpha channel"),
])
def test_v2_inpaint_errors(api: StabilityStandIn, fields: dict[str, str], files: dict[str, bool], message: str) -> None:
    sent = {name: (f"{name}.png", png(64, 64), "image/png") for name in files}
    body, kind = multipart(fields, sent)
    reply = call("POST", f"{api.base_url}/v2beta/stable-image/edit/inpaint", data=body,
                 headers={**KEY, "Content-Type": kind})
    assert reply.status == 400 and reply.json()["name"] == "bad_request" and message in reply.json()["errors"]


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
