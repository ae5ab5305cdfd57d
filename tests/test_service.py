"""The generation service's blocking calls: bounded waits, no job left running for nobody, retries join."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flask import Flask

from conftest import make_settings, start_app, wait_for

LONG = {"prompt": "keeps the device busy", "width": 512, "height": 512, "steps": 60}


def busy(app: Flask) -> str:
    """Queue a long job and wait until the worker runs it."""
    client = app.test_client()
    job_id = client.post("/generate/text2img", json=LONG).get_json()["id"]
    wait_for(lambda: client.get(f"/jobs/{job_id}").get_json()["status"] == "processing", timeout=120)
    return str(job_id)


def jobs(app: Flask) -> list[dict[str, Any]]:
    return list(app.test_client().get("/jobs?limit=200").get_json()["jobs"])


def test_a_blocking_call_that_gives_up_in_the_queue_cancels_its_job(tmp_path: Path) -> None:
    app = start_app(make_settings(tmp_path, queue_wait_timeout=1.0))
    blocker = busy(app)
    answer = app.test_client().post("/v1/images/generations", json={"prompt": "waits behind the long job"})
    assert answer.status_code == 504 and "QUEUE_WAIT_TIMEOUT" in answer.get_json()["error"]["message"]
    assert answer.headers["x-should-retry"] == "false"
    mine = next(job for job in jobs(app) if job["id"] != blocker)
    assert mine["status"] == "canceled"  # not left to run for nobody
    app.test_client().post(f"/jobs/{blocker}/cancel")


def test_a_retried_blocking_call_joins_its_job_instead_of_queueing_another(tmp_path: Path) -> None:
    app = start_app(make_settings(tmp_path))
    blocker = busy(app)
    body = {"prompt": "asked twice", "seed": 4, "steps": 2}
    answers: list[Any] = []
    calls = [threading.Thread(target=lambda: answers.append(app.test_client().post("/sdapi/v1/txt2img", json=body)))
             for _ in range(2)]
    for call in calls:
        call.start()
    wait_for(lambda: len(jobs(app)) >= 2, timeout=30)
    wait_for(lambda: sum(1 for t in calls if t.is_alive()) == 2, timeout=5)  # both callers are waiting
    app.test_client().post(f"/jobs/{blocker}/cancel")
    for call in calls:
        call.join(120)
    assert [answer.status_code for answer in answers] == [200, 200]
    assert len(jobs(app)) == 2, "the second identical call queued a second job"
    assert answers[0].get_json()["images"] == answers[1].get_json()["images"]


def test_the_same_call_made_again_after_the_first_ended_is_a_new_job(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path)).test_client()
    body = {"prompt": "twice, one after the other", "steps": 2}
    assert client.post("/sdapi/v1/txt2img", json=body).status_code == 200
    assert client.post("/sdapi/v1/txt2img", json=body).status_code == 200
    assert len(client.get("/jobs").get_json()["jobs"]) == 2
