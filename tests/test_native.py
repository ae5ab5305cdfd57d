"""The core HTTP API on the real engine and the tiny fixture model."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image

from conftest import make_settings, start_app, wait_for
from sdedge.config import Settings
from sdedge.job_store import JobStatus
from sdedge.samplers import SAMPLERS


def post_image(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    body = {"prompt": "a red fox in the snow", "seed": 7, **fields}
    response = client.post("/image", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def fetch_png(client: FlaskClient, url: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    image.load()
    return image


def pixels(client: FlaskClient, url: str) -> np.ndarray:
    return np.asarray(fetch_png(client, url))


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.data[:300]
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["message"]
    if code:
        assert error["code"] == code
    return error


def test_health_is_ready_on_cpu(client: FlaskClient) -> None:
    body = client.get("/health").get_json()
    assert body["status"] == "ok" and body["ready"] is True
    assert body["device"] == {"requested": "CPU", "actual": "CPU"}
    assert body["used_mocks"] is False
    assert body["model"]["path"].endswith("tiny-sd-int8-ov")
    assert body["versions"]["openvino_genai"] != "unavailable"
    assert body["disk"]["free_bytes"] > 0
    assert body["limits"]["max_steps"] == 100 and body["limits"]["defaults"]["size"] == 64
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200


def test_gpu_request_falls_back_to_cpu(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path, openvino_device="GPU")).test_client()
    body = client.get("/health").get_json()
    assert body["device"] == {"requested": "GPU", "actual": "CPU"}
    assert client.get("/health").status_code == 200


def test_image_returns_png_urls_with_metadata(client: FlaskClient) -> None:
    body = post_image(client, width=96, height=64, negative_prompt="blurry")
    assert body["job_id"] and body["provider"] == "stable-diffusion" and body["used_mocks"] is False
    assert body["created_at"].endswith("Z")
    assert body["seed"] == 7 and body["seeds"] == [7]
    assert body["parameters"]["width"] == 96 and body["timings"]["total_ms"] > 0
    image = fetch_png(client, body["urls"][0])
    assert image.size == (96, 64)
    text = image.info["parameters"]
    assert text.startswith("a red fox in the snow\nNegative prompt: blurry\n")
    assert "Seed: 7" in text and "Size: 96x64" in text and "Sampler: Euler a" in text


def test_same_seed_gives_same_pixels_other_seed_differs(client: FlaskClient) -> None:
    first = pixels(client, post_image(client, seed=1234)["urls"][0])
    again = pixels(client, post_image(client, seed=1234)["urls"][0])
    other = pixels(client, post_image(client, seed=1235)["urls"][0])
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.std() > 0  # a real, varied image, not a constant


def test_camel_case_fields_are_accepted(client: FlaskClient) -> None:
    body = post_image(client, negativePrompt="x", guidanceScale=1.0, steps=2)
    assert body["parameters"]["negative_prompt"] == "x"
    assert body["parameters"]["guidance_scale"] == 1.0 and body["parameters"]["steps"] == 2


@pytest.mark.parametrize("sampler", [*SAMPLERS, "plms"])
def test_each_sampler_runs(client: FlaskClient, sampler: str) -> None:
    body = post_image(client, sampler=sampler, steps=2)
    assert body["parameters"]["sampler"] == ("pndm" if sampler == "plms" else sampler)
    assert fetch_png(client, body["urls"][0]).size == (64, 64)


def test_num_images_use_consecutive_seeds(client: FlaskClient) -> None:
    batch = post_image(client, seed=40, num_images=2)
    assert batch["seeds"] == [40, 41] and len(batch["urls"]) == 2
    alone = post_image(client, seed=41)
    assert np.array_equal(pixels(client, batch["urls"][1]), pixels(client, alone["urls"][0]))


def test_absent_or_negative_seed_is_random_and_returned(client: FlaskClient) -> None:
    seeds = {post_image(client, seed=-1)["seed"], post_image(client, seed=None)["seed"]}
    assert len(seeds) == 2 and all(isinstance(s, int) and s >= 0 for s in seeds)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seed": 1}, "prompt"),
        ({"prompt": "x", "width": 7}, "width"),
        ({"prompt": "x", "width": 100}, "width"),
        ({"prompt": "x", "height": 4096}, "height"),
        ({"prompt": "x", "num_inference_steps": 10000}, "num_inference_steps"),
        ({"prompt": "x", "num_images": 99}, "num_images"),
        ({"prompt": "x", "guidance_scale": -1}, "guidance_scale"),
        ({"prompt": "x", "seed": 2**40}, "seed"),
        ({"prompt": "x", "prompt_typo": 1}, "prompt_typo"),
        ({"prompt": "x" * 10_000_000}, "prompt"),
    ],
)
def test_bad_fields_are_400_naming_the_field(client: FlaskClient, body: dict[str, Any], field: str) -> None:
    error = assert_error(client.post("/image", json=body), 400, "invalid_request")
    assert any(field in (d["field"] or "") for d in error["details"]), error


def test_unknown_sampler_lists_the_valid_ones(client: FlaskClient) -> None:
    error = assert_error(client.post("/image", json={"prompt": "x", "sampler": "dpm++_2m"}), 400)
    assert "euler_a" in error["details"][0]["message"] and "ddim" in error["details"][0]["message"]


def test_malformed_bodies_are_json_errors_and_server_keeps_serving(client: FlaskClient) -> None:
    assert_error(client.post("/image", data="make a cat", content_type="text/plain"), 415)
    assert_error(client.post("/image", data="{not json", content_type="application/json"), 400)
    assert_error(client.post("/image", json=["a", "list"]), 400)
    assert_error(client.get("/image"), 405)
    assert_error(client.post("/image", data=b"x" * (21 * 1024 * 1024), content_type="application/json"), 413)
    assert post_image(client)["urls"]


@pytest.mark.parametrize(
    "path",
    ["/generated/../pyproject.toml", "/generated/..%2Fpyproject.toml", "/generated/%2e%2e/%2e%2e/etc/passwd",
     "/generated/.hidden.png", "/generated/sub/x.png", "/generated/missing.png", "/static/../sdedge/app.py"],
)
def test_paths_never_escape_their_folder(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_unknown_api_path_is_json_404(client: FlaskClient) -> None:
    assert_error(client.get("/no/such/route"), 404, "not_found")


def test_base_url_makes_absolute_links(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path, base_url="http://box.local:8000/")).test_client()
    url = post_image(client)["urls"][0]
    assert url.startswith("http://box.local:8000/generated/job-")


def test_missing_model_without_download_reports_why(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, stable_diffusion_repo_id="someone/absent-model", auto_download_models=False)
    client = start_app(settings).test_client()
    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json()["status"] == "missing" and "absent-model" in health.get_json()["reason"]
    assert client.get("/health/ready").status_code == 503
    error = assert_error(client.post("/image", json={"prompt": "x"}), 503, "model_not_ready")
    assert "absent-model" in error["message"]


def test_samplers_and_models_describe_the_server(client: FlaskClient) -> None:
    names = [s["name"] for s in client.get("/samplers").get_json()["samplers"]]
    assert names == list(SAMPLERS)
    body = client.get("/models").get_json()
    model = body["models"][0]  # the configured model first, then the catalog's
    assert model["installed"] is True and model["loaded"] is True and model["source"] == "configured"
    assert model["family"] == "sd" and body["default"] == model["id"] == "tiny-sd-int8-ov"


def test_page_is_served(client: FlaskClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and b"<form" in page.data
    assert client.get("/static/app.js").status_code == 200


def test_modes_describe_each_mode_with_the_servers_limits(client: FlaskClient, settings: Settings) -> None:
    body = client.get("/modes").get_json()
    modes = {mode["id"]: mode for mode in body["modes"]}
    assert list(modes) == ["text2img", "img2img", "inpaint", "style-transfer"]
    assert modes["inpaint"]["inputs"] == ["image", "mask"] and modes["text2img"]["inputs"] == []
    width = modes["text2img"]["fields"]["width"]
    assert (width["minimum"], width["maximum"], width["default"]) == (settings.min_size, settings.max_width, 64)
    assert modes["img2img"]["fields"]["strength"]["default"] == 0.75
    assert "mask_blur" in modes["inpaint"]["fields"] and "mask_blur" not in modes["img2img"]["fields"]
    assert all(mode["available"] for mode in modes.values())


# -- POST /image: waiting, and answering early only when asked --------------------------------------
BIG = {"width": 512, "height": 512}  # the tiny model's steps take long enough here to keep a job running


def stored(client: FlaskClient, job_id: str) -> Any:
    return client.application.extensions["sdedge"].generation.job_store.get(job_id)


def test_image_waits_past_request_timeout_and_answers_with_urls(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path, request_timeout=0.05)).test_client()
    response = client.post("/image", json={"prompt": "x", "steps": 4, **BIG})  # a second or more: 20x the timeout
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["timings"]["total_ms"] > 50 and fetch_png(client, body["urls"][0]).size == (512, 512)


def test_prefer_respond_async_answers_202_with_where_to_poll(tmp_path: Path) -> None:
    from test_jobs_routes import paused_app

    client = paused_app(tmp_path).test_client()
    response = client.post("/image", json={"prompt": "x"}, headers={"Prefer": "respond-async"})
    assert response.status_code == 202 and response.headers["Preference-Applied"] == "respond-async"
    body = response.get_json()
    assert body["job_id"] == body["id"] and body["status_url"] == f"/jobs/{body['id']}"
    assert response.headers["Location"] == body["status_url"] and body["events_url"].endswith("/events")
    assert client.get(body["status_url"]).get_json()["id"] == body["id"]
    assert stored(client, body["id"]).status is JobStatus.QUEUED


def test_respond_async_body_field_and_prefer_wait(tmp_path: Path) -> None:
    from test_jobs_routes import paused_app

    client = paused_app(tmp_path).test_client()
    asked = client.post("/image", json={"prompt": "x", "respond_async": True})
    assert asked.status_code == 202 and stored(client, asked.get_json()["job_id"]).status is JobStatus.QUEUED
    assert client.post("/image", json={"prompt": "x", "respond_async": "maybe"}).status_code == 400
    assert_error(client.post("/image", json={"prompt": "x"}, headers={"Prefer": "wait=soon"}), 400)


def test_prefer_wait_answers_202_after_the_wait_and_the_job_goes_on(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path)).test_client()
    # six 512x512 steps take well over a second here: the job is still running when the 0.2 s wait ends
    response = client.post("/image", json={"prompt": "x", "steps": 6, **BIG}, headers={"Prefer": "wait=0.2"})
    assert response.status_code == 202 and response.headers["Preference-Applied"] == "wait=0.2"
    job_id = response.get_json()["job_id"]
    assert wait_for(lambda: stored(client, job_id).status.finished, 300)
    assert stored(client, job_id).status is JobStatus.SUCCEEDED


def test_past_queue_wait_timeout_image_answers_202_and_keeps_the_job(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path, queue_wait_timeout=0.3)).test_client()
    blocker = client.post("/generate/text2img", json={"prompt": "busy", "steps": 100, **BIG}).get_json()
    wait_for(lambda: stored(client, blocker["id"]).status is JobStatus.RUNNING)
    response = client.post("/image", json={"prompt": "x", "steps": 1})
    assert response.status_code == 202
    body = response.get_json()
    assert stored(client, body["job_id"]).status is JobStatus.QUEUED  # not canceled: the client polls it
    client.post(f"/jobs/{blocker['id']}/cancel")
    assert wait_for(lambda: stored(client, body["job_id"]).status is JobStatus.SUCCEEDED, 120)
