"""Seed 001's routes in-process on the real engine: listings, submit, RQ-style status, the image, errors."""

from __future__ import annotations

from pathlib import Path

from flask.testing import FlaskClient

from conftest import wait_for
from sdedge.samplers import SAMPLERS


def test_listings_submit_status_and_image(client: FlaskClient) -> None:
    models = client.get("/local/models").get_json()
    samplers = client.get("/local/sampler_names").get_json()
    assert models == ["tiny-sd-int8-ov"] and samplers == [s.a1111_name for s in SAMPLERS.values()]
    response = client.post("/local/images", json={"prompt": "a boat", "model": models[0], "sampler_name": "DDIM",
                                                  "steps": 2, "seed": 3})
    assert response.status_code == 202 and response.headers["Location"].startswith("/status/")
    image_id = response.get_json()["image_id"]
    assert response.get_json()["status"] == "queued"
    done = wait_for(lambda: (s := client.get(f"/status/{image_id}").get_json())["status"] == "finished" and s, 120)
    assert done == {"image_id": image_id, "status": "finished", "progress": 1.0, "image_url": f"/image/{image_id}",
                    "error": None}
    image = client.get(done["image_url"])
    assert image.status_code == 200 and image.mimetype == "image/png" and image.data.startswith(b"\x89PNG")
    job = client.get(f"/jobs/{image_id}").get_json()
    assert job["result"]["parameters"]["sampler"] == "ddim" and job["result"]["seed"] == 3


def test_unknown_model_or_sampler_and_early_download_are_clear_errors(tmp_path: Path) -> None:
    from test_jobs_routes import paused_app

    client = paused_app(tmp_path).test_client()
    bad_model = client.post("/local/images", json={"prompt": "x", "model": "sdxl"}).get_json()["error"]
    assert bad_model["details"][0]["field"] == "model" and "tiny-sd-int8-ov" in bad_model["message"]
    bad_sampler = client.post("/local/images", json={"prompt": "x", "sampler_name": "Heun++"}).get_json()["error"]
    assert bad_sampler["details"][0]["field"] == "sampler_name"
    assert client.post("/local/images", json={"prompt": "x", "cfg": 3}).status_code == 400
    image_id = client.post("/local/images", json={"prompt": "x"}).get_json()["image_id"]
    assert client.get(f"/status/{image_id}").get_json()["status"] == "queued"
    early = client.get(f"/image/{image_id}")
    assert early.status_code == 404 and "not ready" in early.get_json()["error"]["message"]
    client.post(f"/jobs/{image_id}/cancel")
    canceled = client.get(f"/status/{image_id}").get_json()
    assert canceled["status"] == "canceled" and canceled["error"]
    assert client.get("/status/job-0000").status_code == 404


def test_the_stability_path_without_a_stability_engine_names_the_setting(client: FlaskClient) -> None:
    answer = client.post("/images", json={"prompt": "a lighthouse"})
    assert answer.status_code == 404  # a path this server does not serve until configured
    message = answer.get_json()["error"]["message"]
    assert "REMOTE_ENGINES" in message and "STABILITY_API_KEY" in message and "/local/images" in message
