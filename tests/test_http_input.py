"""Hostile input on every surface: a clean 4xx naming the problem, never a 500, never a silent coercion."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from conftest import module_app
from test_uploads import png_header_only

JSON_ROUTES = ["/image", "/generate/text2img", "/sdapi/v1/txt2img", "/v1/images/generations"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """Every request of this module is refused (or only reads), so one app serves them all."""
    with module_app(tmp_path_factory.mktemp("http-input")) as app:
        yield app


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def png(size: tuple[int, int] = (64, 64), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, format="PNG")
    return out.getvalue()


def post_raw(client: FlaskClient, path: str, text: str | bytes) -> Any:
    return client.post(path, data=text, content_type="application/json")


def error_message(answer: Any) -> str:
    return str(answer.get_json()["error"]["message"])


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_deeply_nested_json_is_a_400(client: FlaskClient, path: str) -> None:
    deep = '{"prompt": "x", "a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = post_raw(client, path, deep)
    assert answer.status_code == 400, answer.get_json()
    assert "nested" in error_message(answer)


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_duplicate_keys_are_a_400_naming_the_key(client: FlaskClient, path: str) -> None:
    answer = post_raw(client, path, '{"prompt": "a cat", "prompt": "a dog"}')
    assert answer.status_code == 400 and "'prompt' appears twice" in error_message(answer)


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused(client: FlaskClient, path: str, number: str) -> None:
    field = {"/sdapi/v1/txt2img": "cfg_scale"}.get(path, "guidance_scale")
    answer = post_raw(client, path, f'{{"prompt": "x", "{field}": {number}}}')
    assert answer.status_code == 400, answer.get_data(as_text=True)
    json.loads(answer.get_data(as_text=True))  # the answer itself is standard JSON


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_lone_surrogate_in_a_prompt_is_refused_at_submission(client: FlaskClient, path: str) -> None:
    answer = post_raw(client, path, '{"prompt": "a cat \\ud800 in snow"}')
    assert answer.status_code == 400 and "surrogate" in error_message(answer)
    assert client.get("/jobs").get_json()["jobs"] == []  # no job was queued to fail later in the runtime


def test_zero_width_is_refused_not_taken_as_the_default(client: FlaskClient) -> None:
    answer = client.post("/image", json={"prompt": "x", "width": 0})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["details"][0]["field"] == "width"


@pytest.mark.parametrize("query", ["limit=" + "9" * 5000, "limit=-1", "limit=1.5", "limit=abc", "status=done",
                                   "before=" + "x" * 5000])
def test_query_strings_go_through_validated_models(client: FlaskClient, query: str) -> None:
    answer = client.get(f"/jobs?{query}")
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"]["details"][0]["field"] in ("limit", "status", "before")


def test_a1111_progress_query_is_validated(client: FlaskClient) -> None:
    assert client.get("/sdapi/v1/progress?skip_current_image=perhaps").status_code == 400


BOMB = png_header_only(60_000, 60_000)
BIG_BUT_SMALL_FILE = png_header_only(8_000, 8_000)


@pytest.mark.parametrize("bomb", [BOMB, BIG_BUT_SMALL_FILE])
def test_decompression_bombs_are_refused_on_every_surface(client: FlaskClient, bomb: bytes) -> None:
    image = png()
    cases = [
        client.post("/generate/img2img", json={"prompt": "x", "init_image": b64(bomb)}),
        client.post("/generate/inpaint", json={"prompt": "x", "image": b64(image), "mask": b64(bomb)}),
        client.post("/generate/style-transfer", json={"content_image": b64(image), "style_image": b64(bomb)}),
        client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": [b64(bomb)]}),
        client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": [b64(image)], "mask": b64(bomb)}),
        client.post("/v1/images/edits", data={"prompt": "x", "image": (io.BytesIO(bomb), "a.png")},
                    content_type="multipart/form-data"),
        client.post("/v1/images/edits", data={"prompt": "x", "image": (io.BytesIO(image), "a.png"),
                                              "mask": (io.BytesIO(bomb), "m.png")},
                    content_type="multipart/form-data"),
    ]
    for answer in cases:
        assert answer.status_code == 413, answer.get_json()
        assert "MAX_INPUT_PIXELS" in str(answer.get_json()), answer.get_json()


def test_a_corrupt_mask_is_a_400_naming_the_mask(client: FlaskClient) -> None:
    for answer in (client.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": [b64(png())],
                                                          "mask": b64(b"not an image")}),
                   client.post("/v1/images/edits", data={"prompt": "x", "image": (io.BytesIO(png()), "a.png"),
                                                         "mask": (io.BytesIO(b"not an image"), "m.png")},
                               content_type="multipart/form-data")):
        assert answer.status_code == 400 and "mask" in str(answer.get_json())
