"""Image-to-image, inpainting and style transfer through the HTTP API, on the real engine."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from test_uploads import png_header_only


def noise(width: int = 64, height: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def square_mask(width: int = 64, height: int = 64, box: tuple[int, int, int, int] = (16, 16, 48, 48)) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, box)
    return mask


def run(client: FlaskClient, mode: str, **fields: Any) -> np.ndarray:
    body = {"mode": mode, "prompt": "a painting", "seed": 5, "steps": 3, **fields}
    response = client.post("/image", json=body)
    assert response.status_code == 200, response.get_json()
    png = client.get(response.get_json()["urls"][0])
    return np.asarray(Image.open(io.BytesIO(png.data)).convert("RGB"))


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]  # type: ignore[no-any-return]


def test_img2img_strength_zero_returns_the_input(client: FlaskClient) -> None:
    source = noise()
    out = run(client, "img2img", init_image=data_url(source), strength=0, width=64, height=64)
    assert np.array_equal(out, np.asarray(source))


def test_img2img_strength_one_repaints_and_is_reproducible(client: FlaskClient) -> None:
    source = data_url(noise())
    first = run(client, "img2img", init_image=source, strength=1.0)
    assert not np.array_equal(first, np.asarray(noise()))
    assert np.array_equal(first, run(client, "img2img", init_image=source, strength=1.0))


def test_img2img_size_follows_the_input_aspect(client: FlaskClient) -> None:
    out = run(client, "img2img", initImage=data_url(noise(128, 64)), strength=0.5)
    assert out.shape == (32, 64, 3)  # DEFAULT_SIZE=64 in the tests: longer side 64


def test_inpaint_keeps_every_unmasked_pixel_and_changes_the_masked_ones(client: FlaskClient) -> None:
    source, mask = noise(seed=3), square_mask()
    out = run(client, "inpaint", image=data_url(source), mask=data_url(mask), mask_blur=0)
    keep = np.asarray(mask) == 0
    assert np.array_equal(out[keep], np.asarray(source)[keep])
    assert np.mean(out[~keep] != np.asarray(source)[~keep]) > 0.5


def test_inpaint_with_blur_and_inverted_mask_keeps_far_pixels(client: FlaskClient) -> None:
    source = noise(seed=4)
    out = run(client, "inpaint", image=data_url(source), mask=data_url(square_mask()), mask_blur=4,
              invert_mask=True)
    centre = (slice(28, 36), slice(28, 36))  # deep inside the white square: kept after inverting
    assert np.array_equal(out[centre], np.asarray(source)[centre])
    assert not np.array_equal(out[:4, :4], np.asarray(source)[:4, :4])


def test_inpaint_at_a_size_other_than_the_models_native_one(client: FlaskClient) -> None:
    source, mask = noise(128, 96, seed=6), square_mask(128, 96, (32, 32, 96, 64))
    out = run(client, "inpaint", image=data_url(source), mask=data_url(mask), mask_blur=0, width=128, height=96)
    keep = np.asarray(mask) == 0
    assert out.shape == (96, 128, 3) and np.array_equal(out[keep], np.asarray(source)[keep])


def test_inpaint_mask_of_another_size_is_resized(client: FlaskClient) -> None:
    source = noise(seed=5)
    small_mask = square_mask(16, 16, (4, 4, 12, 12))
    out = run(client, "inpaint", image=data_url(source), mask=data_url(small_mask), mask_blur=0)
    assert np.array_equal(out[:8], np.asarray(source)[:8])  # top rows are black in the scaled mask


def test_style_transfer_returns_the_requested_size(client: FlaskClient) -> None:
    out = run(client, "style-transfer", contentImage=data_url(noise(seed=1)), styleImage=data_url(noise(seed=2)),
              styleStrength=0.8, contentStrength=0.4, width=96, height=64, prompt="")
    assert out.shape == (64, 96, 3)


def test_style_transfer_with_full_content_strength_is_the_adain_decode(client: FlaskClient) -> None:
    fields = {"content_image": data_url(noise(seed=1)), "style_image": data_url(noise(seed=2))}
    kept = run(client, "style-transfer", content_strength=1.0, style_strength=0.0, **fields)
    styled = run(client, "style-transfer", content_strength=1.0, style_strength=1.0, **fields)
    assert kept.shape == styled.shape == (64, 64, 3) and not np.array_equal(kept, styled)


def test_multipart_upload_works_like_json(client: FlaskClient) -> None:
    buffer = io.BytesIO()
    noise(seed=7).save(buffer, format="PNG")
    response = client.post("/generate/img2img", content_type="multipart/form-data", data={
        "prompt": "x", "strength": "0", "steps": "2", "init_image": (io.BytesIO(buffer.getvalue()), "in.png")})
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert job["type"] == "img2img" and job["request"]["prompt"] == "x"


def test_stored_request_drops_the_image_payload(client: FlaskClient) -> None:
    response = client.post("/generate/img2img", json={"prompt": "x", "init_image": data_url(noise()), "steps": 1})
    assert response.get_json()["request"]["init_image"] == "<image>"


@pytest.mark.parametrize(
    ("fields", "status", "field"),
    [
        ({"init_image": "data:image/png;base64,@@@"}, 400, "init_image"),
        ({"init_image": base64.b64encode(png_header_only(20000, 20000)).decode()}, 413, "init_image"),
        ({"init_image": ""}, 400, "init_image"),
        ({"init_image": data_url(noise()).replace("image/png", "image/gif")[:30]}, 400, "init_image"),
        ({}, 400, "init_image"),
        ({"init_image": data_url(noise()), "strength": 1.5}, 400, "strength"),
        ({"init_image": data_url(noise()), "resize_mode": "zoom"}, 400, "resize_mode"),
    ],
)
def test_bad_image_inputs_are_4xx_naming_the_field(client: FlaskClient, fields: dict[str, Any], status: int,
                                                   field: str) -> None:
    error = error_of(client.post("/generate/img2img", json={"prompt": "x", **fields}), status)
    assert field in error["message"]


def test_bad_uploads_are_4xx_and_the_server_still_serves(client: FlaskClient) -> None:
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    for payload, status in ((b"", 400), (gif.getvalue(), 400), (png_header_only(20000, 20000), 413)):
        response = client.post("/generate/img2img", content_type="multipart/form-data",
                               data={"prompt": "x", "init_image": (io.BytesIO(payload), "f.png")})
        assert "init_image" in error_of(response, status)["message"]
    not_image = {"image": data_url(noise()), "mask": base64.b64encode(b"hello").decode()}
    assert "mask" in error_of(client.post("/generate/inpaint", json={"prompt": "x", **not_image}), 400)["message"]
    assert run(client, "text2img").shape == (64, 64, 3)


def test_four_modes_in_one_server_share_one_engine(app: Flask, client: FlaskClient) -> None:
    engine = app.extensions["sdedge"].loader.engine()
    source, other = data_url(noise(seed=8)), data_url(noise(seed=9))
    run(client, "text2img")
    run(client, "img2img", init_image=source)
    run(client, "inpaint", image=source, mask=data_url(square_mask()))
    run(client, "style-transfer", content_image=source, style_image=other)
    assert app.extensions["sdedge"].loader.engine() is engine
    pipes = engine._sets["full"]  # (and "tiny", on the same compiled text encoder and UNet)
    assert pipes.inpaint is not None and pipes.image2image is not None  # all three derived from one


def test_unknown_mode_is_400(client: FlaskClient) -> None:
    assert error_of(client.post("/image", json={"prompt": "x", "mode": "upscale"}), 400)["details"][0]["field"] == "mode"


@pytest.mark.parametrize(("mode", "fields"), [
    ("img2img", {"init_image": "INPUT", "strength": 0.2, "steps": 4}),
    ("inpaint", {"image": "INPUT", "mask": "MASK", "strength": 0.1, "steps": 4}),
    ("style-transfer", {"content_image": "INPUT", "style_image": "INPUT", "steps": 2}),
])
def test_strength_times_steps_below_one_still_runs_one_denoising_step(client: FlaskClient, mode: str,
                                                                      fields: dict[str, Any]) -> None:
    values = {"INPUT": data_url(noise()), "MASK": data_url(square_mask())}
    body = {key: values.get(value, value) if isinstance(value, str) else value for key, value in fields.items()}
    response = client.post("/image", json={"mode": mode, "prompt": "x", **body})
    assert response.status_code == 200, response.get_json()
    params = response.get_json()["parameters"]
    strength = params["strength"] if mode != "style-transfer" else 0.6 * (1 - params["content_strength"])
    assert int(params["steps"] * strength) >= 1 and params["steps"] >= fields["steps"]
