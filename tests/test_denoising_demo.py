"""Seed 003's routes in-process on the real engine: the transaction key, FIFO, steps while running, errors."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from PIL import Image

from conftest import make_settings, start_app, wait_for
from sdedge.job_store import JobStatus

BIG = {"width": 384, "height": 384}  # the tiny model's steps take long enough here to poll a running job


def status(client: FlaskClient, key: str) -> dict[str, Any]:
    response = client.get(f"/api/status/{key}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def image_of(data_url: str) -> Image.Image:
    assert data_url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def test_steps_appear_while_running_then_done_with_final_and_seed(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path)).test_client()
    submitted = client.post("/api/request", json={"prompt": "a fox", "transaction_key": "k1", "steps": 25, **BIG})
    assert submitted.status_code == 202 and submitted.get_json() == {"transaction_key": "k1", "status": "queued"}
    running = wait_for(lambda: (s := status(client, "k1"))["status"] == "processing" and s["steps"] and s, 120)
    assert "final" not in running and image_of(running["steps"][0]).size == (384, 384)
    done = wait_for(lambda: (s := status(client, "k1"))["status"] == "done" and s, 300)
    assert len(done["steps"]) == 5 and image_of(done["final"]).size == (384, 384)  # steps 5, 10, 15, 20, 25, as the seed
    assert isinstance(done["seed"], int) and "error" not in done
    again = client.post("/api/request", json={"prompt": "a fox", "transaction_key": "k1"})
    assert again.status_code == 200 and again.get_json()["status"] == "done"  # the same key: the same job


def test_jobs_run_fifo_and_errors_are_strings(tmp_path: Path) -> None:
    from test_jobs_routes import paused_app

    app = paused_app(tmp_path)
    client = app.test_client()
    for key in ("first", "second"):
        assert client.post("/api/request", json={"prompt": key, "transaction_key": key, "steps": 1}).status_code == 202
    jobs = app.extensions["sdedge"].generation.job_store
    first, second = (jobs.find_by_key(key) for key in ("first", "second"))
    assert first is not None and second is not None and jobs.position(first) < jobs.position(second)
    assert client.post(f"/jobs/{second.id}/cancel").status_code == 200
    canceled = status(client, "second")
    assert canceled["status"] == "error" and isinstance(canceled["error"], str) and canceled["steps"] == []
    assert client.get("/api/status/nope").status_code == 404
    assert client.post("/api/request", json={"prompt": "x"}).get_json()["error"]["details"][0]["field"] == \
        "transaction_key"
    assert client.post("/api/request", json={"prompt": "x", "transaction_key": "y", "colour": 1}).status_code == 400
    assert jobs.get(first.id).status is JobStatus.QUEUED

