"""The A1111 remote engine: server 1's jobs for a remote model run on server 2, a second real sdedge process on
the tiny model, through its /sdapi/v1 routes; server 1 keeps the job, its progress, cancel and image."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import wait_for
from sdedge.engine.params import GenerationParams, ImageInputs
from sdedge.remote.a1111_client import request_for
from serverproc import ServerProcess

FINISHED = ("completed", "failed", "canceled")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    base = tmp_path_factory.mktemp("a1111-remote")
    (base / "two").mkdir()
    (base / "one").mkdir()
    two = ServerProcess(base / "two", OPENVINO_DEVICE="CPU", NODE_NAME="two", MAX_STEPS="60").start()
    engines = [{"id": "box2", "kind": "a1111", "url": two.base, "name": "The other box"}]
    one = ServerProcess(base / "one", OPENVINO_DEVICE="CPU", NODE_NAME="one", WORKER_POLL_SECONDS="0.2",
                        REMOTE_ENGINES=json.dumps(engines), MAX_STEPS="150").start()
    try:
        two.wait_ready()
        one.wait_ready()
        yield one, two
    finally:
        one.stop()
        two.stop()


def finished(server: ServerProcess, job_id: str, timeout: float = 180) -> dict[str, Any]:
    return wait_for(lambda: (j := server.request("GET", f"/jobs/{job_id}")[1])["status"] in FINISHED and j,
                    timeout=timeout, interval=0.1)


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def test_request_body_maps_the_job_to_a1111_fields() -> None:
    params = GenerationParams("a fox", "blurry", 64, 96, 12, 6.5, "euler", 9, num_images=2, mode="inpaint",
                              strength=0.8)
    picture, mask = Image.new("RGB", (64, 96), "red"), Image.new("L", (64, 96), 255)
    path, body = request_for(params, ImageInputs(image=picture, mask=mask), "dreamshaper_8")
    assert path == "/sdapi/v1/img2img"
    assert {k: body[k] for k in ("prompt", "negative_prompt", "steps", "cfg_scale", "width", "height", "seed",
                                 "sampler_name", "batch_size", "denoising_strength", "mask_blur")} == {
        "prompt": "a fox", "negative_prompt": "blurry", "steps": 12, "cfg_scale": 6.5, "width": 64, "height": 96,
        "seed": 9, "sampler_name": "Euler", "batch_size": 2, "denoising_strength": 0.8, "mask_blur": 0}
    assert len(body["init_images"]) == 1 and body["mask"]
    assert body["override_settings"] == {"sd_model_checkpoint": "dreamshaper_8"}
    text_path, text_body = request_for(GenerationParams("x", "", 64, 64, 3, 7.0, "euler_a", 1), ImageInputs(), None)
    assert text_path == "/sdapi/v1/txt2img" and "init_images" not in text_body and "override_settings" not in text_body


def test_a_job_for_the_remote_model_runs_on_server_2_and_server_1_serves_its_image(
        servers: tuple[ServerProcess, ServerProcess]) -> None:
    one, two = servers
    status, job = one.request("POST", "/generate/text2img", {"prompt": "a red fox", "model": "box2", "seed": 7,
                                                              "steps": 3, "num_images": 2})
    assert status == 202 and job["model"] == "box2", job
    done = finished(one, job["id"])
    assert done["status"] == "completed", done["error"]
    assert done["result"]["worker"] == {"label": "remote-box2", "device": None, "remote": "box2"}
    assert done["result"]["seeds"] == [7, 8]
    ran = [j for j in two.request("GET", "/jobs?limit=20")[1]["jobs"] if j["request"].get("prompt") == "a red fox"]
    assert len(ran) == 1 and ran[0]["status"] == "completed" and ran[0]["result"]["seeds"] == [7, 8]  # server 2 ran it
    for mine, theirs in zip(done["result"]["urls"], ran[0]["result"]["urls"]):
        status_one, image_one = one.request("GET", mine)
        status_two, image_two = two.request("GET", theirs)
        assert status_one == status_two == 200
        assert np.array_equal(pixels(image_one), pixels(image_two))  # server 2's pixels, stored by server 1
        assert "Model: box2" in Image.open(io.BytesIO(image_one)).info["parameters"]
    assert done["result"]["images"][0].startswith("data:image/png;base64,")  # seed 002's data URLs, from server 1
    assert two.request("GET", done["result"]["urls"][0])[0] == 404  # server 2 never had server 1's file


def test_remote_runs_beside_the_local_device_shows_progress_and_cancels_on_server_2(
        servers: tuple[ServerProcess, ServerProcess]) -> None:
    one, two = servers
    _, local = one.request("POST", "/generate/text2img", {"prompt": "local", "width": 512, "height": 512,
                                                           "steps": 40})
    _, remote = one.request("POST", "/generate/text2img", {"prompt": "far away", "model": "box2", "width": 512,
                                                            "height": 512, "steps": 40})
    both = wait_for(lambda: len((q := one.request("GET", "/queue/status")[1])["runningJobs"]) == 2 and q,
                    timeout=120, interval=0.1)
    assert {j["worker"] for j in both["runningJobs"]} == {"CPU", "remote-box2"}
    assert {w["label"]: w["job"] for w in both["workers"]} == {"CPU": local["id"], "remote-box2": remote["id"]}
    # the remote's progress reaches server 1's job (polled from /sdapi/v1/progress), with its preview
    seen = wait_for(lambda: (j := one.request("GET", f"/jobs/{remote['id']}?images=urls")[1])["preview_url"] and j,
                    timeout=120, interval=0.1)
    assert seen["status"] == "processing" and seen["progressDetail"]["step"] >= 1
    assert one.request("GET", seen["preview_url"])[0] == 200  # server 2's step preview, stored by server 1
    assert one.request("POST", f"/jobs/{remote['id']}/cancel")[0] == 200
    assert finished(one, remote["id"])["status"] == "canceled"
    theirs = [j for j in two.request("GET", "/jobs?limit=20")[1]["jobs"] if j["request"].get("prompt") == "far away"]
    assert finished(two, theirs[0]["id"])["status"] == "canceled"  # interrupted there, not left to run
    one.request("POST", f"/jobs/{local['id']}/cancel")
    assert finished(one, local["id"])["status"] == "canceled"


def test_a_remote_refusal_fails_the_job_with_the_remote_s_reason(servers: tuple[ServerProcess, ServerProcess]) -> None:
    one, _ = servers
    _, job = one.request("POST", "/generate/text2img", {"prompt": "too long", "model": "box2", "steps": 120})
    done = finished(one, job["id"])
    assert done["status"] == "failed" and done["errorDetail"]["code"] == "remote_engine_failed"
    assert "box2" in done["error"] and "HTTP 400" in done["error"]
    assert "steps" in done["error"]  # server 2's own words: its MAX_STEPS is 60
    status, health = one.request("GET", "/health")
    assert status == 200 and {w["label"] for w in health["workers"]} == {"CPU", "remote-box2"}
    remote = next(w for w in health["workers"] if w["label"] == "remote-box2")
    assert "HTTP 400" in remote["last_error"]  # a monitor sees the remote's last failure until a job succeeds


def test_credentials_are_basic_for_user_colon_password_and_bearer_for_a_token() -> None:
    import httpx

    from sdedge.remote.a1111_client import auth_for

    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(200, json={})

    for key in ("bob:s3cret", "tok-123", None):
        with httpx.Client(transport=httpx.MockTransport(handler), auth=auth_for(key)) as client:
            client.get("http://remote/sdapi/v1/options")
    assert seen == ["Basic Ym9iOnMzY3JldA==", "Bearer tok-123", ""]
