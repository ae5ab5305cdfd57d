"""The job queue in-process on the real engine: order, idempotency, progress, cancel, limits."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conftest import _apps, make_settings, start_app, wait_for
from sdedge.app import create_app
from test_openapi_spec import check_response

# A size at which the tiny model's steps take long enough to act on a running job.
SLOW = {"width": 512, "height": 512}


def submit(client: FlaskClient, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    response = client.post("/generate/text2img", json={"prompt": "a kite", "seed": 1, **fields}, headers=headers)
    assert response.status_code in (200, 202), response.get_json()
    return response.get_json()


def job(client: FlaskClient, job_id: str) -> dict[str, Any]:
    return client.get(f"/jobs/{job_id}").get_json()


def finished(client: FlaskClient, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    return wait_for(lambda: (j := job(client, job_id))["status"] in ("completed", "failed", "canceled") and j,
                    timeout)


def paused_app(tmp_path: Path, **overrides: object) -> Flask:
    """An app whose model is not loaded yet, so submitted jobs wait in the queue."""
    app = create_app(make_settings(tmp_path, **overrides), load_model=False)
    _apps.append(app)
    return app


def test_submit_returns_202_with_the_queued_job(client: FlaskClient) -> None:
    body = submit(client, steps=2)
    assert body["status"] in ("queued", "processing") and body["type"] == "text2img"
    assert body["request"]["prompt"] == "a kite" and body["created_at"].endswith("Z")
    assert body["createdAt"] == body["created_at"] and body["progress"] in (0, 50)
    done = finished(client, body["id"])
    assert done["status"] == "completed" and done["progressDetail"]["step"] == done["progressDetail"]["total"] == 2
    assert done["result"]["seed"] == 1 and client.get(done["result"]["urls"][0]).status_code == 200
    assert done["started_at"] and done["finished_at"] and done["error"] is None


def test_ten_jobs_run_in_priority_then_fifo_order(tmp_path: Path) -> None:
    app = paused_app(tmp_path)
    client = app.test_client()
    priorities = [0, 5, 0, -1, 5, 0, 10, -1, 0, 5]
    ids = [submit(client, steps=1, priority=p)["id"] for p in priorities]
    positions = [job(client, i)["position"] for i in ids]
    app.extensions["sdedge"].loader.start()
    jobs = [finished(client, i) for i in ids]
    assert all(j["status"] == "completed" for j in jobs)
    run_order = [j["id"] for j in sorted(jobs, key=lambda j: j["started_at"])]
    expected = [i for _, _, i in sorted(zip([-p for p in priorities], range(10), ids))]
    assert run_order == expected
    assert sorted(positions) == list(range(10)) and positions[ids.index(expected[0])] == 0


def test_idempotency_key_returns_the_same_job(client: FlaskClient) -> None:
    first = submit(client, {"Idempotency-Key": "abc-1"}, steps=1)
    again = client.post("/generate/text2img", json={"prompt": "other", "steps": 1}, headers={"Idempotency-Key": "abc-1"})
    assert again.status_code == 200 and again.get_json()["id"] == first["id"]
    by_body = submit(client, steps=1, transaction_key="tx-9")
    assert submit(client, steps=1, transactionKey="tx-9")["id"] == by_body["id"]


def test_cancel_a_queued_job_at_once(tmp_path: Path) -> None:
    client = paused_app(tmp_path).test_client()
    queued = submit(client, steps=1)
    response = client.post(f"/jobs/{queued['id']}/cancel")
    assert response.status_code == 200 and response.get_json()["success"] is True
    assert job(client, queued["id"])["status"] == "canceled"


def test_cancel_a_running_job_stops_within_two_steps(client: FlaskClient) -> None:
    running = submit(client, steps=50, **SLOW)
    at_cancel = wait_for(lambda: (step := job(client, running["id"])["progressDetail"]["step"]) >= 2 and step)
    client.post(f"/jobs/{running['id']}/cancel")
    done = finished(client, running["id"])
    assert done["status"] == "canceled" and done["errorDetail"]["code"] == "canceled"
    assert done["progressDetail"]["step"] <= at_cancel + 2 < 50
    follower = submit(client, steps=1)  # the device is free again
    assert finished(client, follower["id"])["status"] == "completed"


def test_progress_and_previews_while_running(client: FlaskClient) -> None:
    running = submit(client, steps=30, **SLOW)
    view = wait_for(lambda: (j := job(client, running["id"]))["preview_url"] and j)
    assert view["status"] == "processing" and view["progressDetail"]["total"] == 30
    assert view["eta_seconds"] is not None and view["eta_seconds"] >= 0
    preview = client.get(view["preview_url"])
    assert preview.status_code == 200 and preview.mimetype == "image/png"
    status = client.get("/queue/status").get_json()
    assert status["processingJobs"] == 1 and status["currentJob"]["id"] == running["id"]
    client.post(f"/jobs/{running['id']}/cancel")
    assert finished(client, running["id"])["preview_url"] is None
    assert client.get(view["preview_url"]).status_code == 200  # kept: a page may still be loading it
    client.delete(f"/jobs/{running['id']}")
    assert client.get(view["preview_url"]).status_code == 404


def test_queue_full_is_429_with_retry_after(tmp_path: Path) -> None:
    client = paused_app(tmp_path, max_queue_size=2).test_client()
    submit(client, steps=1)
    submit(client, steps=1)
    response = client.post("/generate/text2img", json={"prompt": "x"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert response.get_json()["error"]["code"] == "queue_full"


def test_job_timeout_fails_the_job(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path, job_timeout=0.05)).test_client()
    done = finished(client, submit(client, steps=50, **SLOW)["id"])
    assert done["status"] == "failed" and done["errorDetail"]["code"] == "timeout"


def test_list_filters_and_pages_newest_first(client: FlaskClient) -> None:
    ids = [submit(client, steps=1)["id"] for _ in range(3)]
    for i in ids:
        finished(client, i)
    page = client.get("/jobs?limit=2").get_json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2]
    rest = client.get(f"/jobs?limit=2&before={page['next_before']}").get_json()
    assert [j["id"] for j in rest["jobs"]] == [ids[0]]
    assert len(client.get("/jobs?status=completed").get_json()["jobs"]) == 3
    assert client.get("/jobs?status=processing").get_json()["jobs"] == []
    for stored_name in ("succeeded", "running", "bogus"):  # the database's names are not the API's
        assert client.get(f"/jobs?status={stored_name}").status_code == 400
    assert client.get("/jobs?limit=0").status_code == 400


def test_delete_removes_a_finished_job_and_its_files(client: FlaskClient) -> None:
    done = finished(client, submit(client, steps=1)["id"])
    url = done["result"]["urls"][0]
    assert client.delete(f"/jobs/{done['id']}").status_code == 200
    assert client.get(url).status_code == 404
    assert client.get(f"/jobs/{done['id']}").status_code == 404
    assert client.delete("/jobs/job-nope").status_code == 404


def test_delete_of_a_queued_job_is_a_conflict(tmp_path: Path) -> None:
    client = paused_app(tmp_path).test_client()
    queued = submit(client, steps=1)
    assert client.delete(f"/jobs/{queued['id']}").get_json()["error"]["code"] == "conflict"


def test_event_stream_reads_to_done(client: FlaskClient) -> None:
    running = submit(client, steps=4)
    text = client.get(f"/jobs/{running['id']}/events").get_data(as_text=True)
    assert "event: progress" in text and text.rstrip().split("\n\n")[-1].startswith("event: done")
    assert '"status": "completed"' in text.split("event: done")[1]
    events = [(block.split("\n")[0][7:], json.loads(block.split("data: ", 1)[1]))
              for block in text.strip().split("\n\n") if block.startswith("event:")]
    progress = [data for kind, data in events if kind == "progress"]
    assert all(isinstance(p["progress"], int) and p["status"] in ("queued", "processing", "completed") for p in progress)
    done = events[-1][1]
    assert done["result"]["images"][0].startswith("data:image/png;base64,")
    light = client.get(f"/jobs/{running['id']}/events?images=urls").get_data(as_text=True)  # ended: done at once
    assert json.loads(light.split("event: done\ndata: ")[1])["result"]["images"] == done["result"]["urls"]


@pytest.mark.parametrize("path", ["/jobs/job-missing", "/jobs/job-missing/events"])
def test_unknown_job_is_404(client: FlaskClient, path: str) -> None:
    assert client.get(path).get_json()["error"]["code"] == "not_found"


def test_cancelling_a_job_that_ended_is_a_409_with_its_status(client: FlaskClient) -> None:
    done = finished(client, submit(client, steps=1)["id"])
    answer = client.post(f"/jobs/{done['id']}/cancel")
    assert answer.status_code == 409
    assert answer.get_json()["error"]["details"][0]["status"] == "completed"
    assert client.post(f"/jobs/{done['id']}/cancel").status_code == 409  # and again: nothing changed
    assert client.post("/jobs/job-0000000000000000/cancel").status_code == 404


def test_a_job_whose_images_are_being_written_is_not_processing(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from sdedge.file_store import FileStore

    writing, release = threading.Event(), threading.Event()
    original = FileStore.save

    def slow_save(self: FileStore, *args: Any, **kwargs: Any) -> str:
        writing.set()
        release.wait(30)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(FileStore, "save", slow_save)
    client = app.test_client()
    job_id = submit(client, steps=1)["id"]
    assert writing.wait(60)
    try:
        assert job(client, job_id)["status"] == "processing"  # its result is not recorded yet...
        assert client.get("/queue/status").get_json()["processingJobs"] == 0  # ...but the device is free
    finally:
        release.set()
    assert finished(client, job_id)["status"] == "completed"


def test_a_completed_job_in_seed_002_terms(client: FlaskClient) -> None:
    done = finished(client, submit(client, steps=2, guidance_scale=3.5)["id"])
    assert done["status"] == "completed" and done["progress"] == 100 and done["error"] is None
    assert done["createdAt"] <= done["startedAt"] <= done["completedAt"] and done["completedAt"].endswith("Z")
    result = done["result"]
    stored = client.get(result["urls"][0]).data
    assert result["images"] == ["data:image/png;base64," + base64.b64encode(stored).decode()]
    assert isinstance(result["timeTaken"], int) and result["timeTaken"] >= 0
    assert result["parameters"]["guidanceScale"] == 3.5 and result["parameters"]["model"] == "tiny-sd-int8-ov"
    light = client.get(f"/jobs/{done['id']}?images=urls").get_json()
    assert light["result"]["images"] == light["result"]["urls"] == result["urls"]
    listed = client.get("/jobs?status=completed").get_json()["jobs"][0]
    assert listed["result"]["images"] == result["urls"]  # a list sends links unless asked
    assert client.get("/jobs?status=completed&images=data").get_json()["jobs"][0]["result"]["images"] == result["images"]
    assert client.get(f"/jobs/{done['id']}?images=base64").status_code == 400
    doc = client.get("/openapi.json").get_json()
    check_response(doc, "/jobs/{job_id}", "get", 200, done)
    check_response(doc, "/jobs", "get", 200, client.get("/jobs").get_json())


def test_a_failed_job_says_why_in_a_string(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path, job_timeout=0.05)).test_client()
    done = finished(client, submit(client, steps=50, **SLOW)["id"])
    assert done["status"] == "failed" and done["completedAt"] and done["result"] is None
    assert isinstance(done["error"], str) and done["error"] == done["errorDetail"]["message"]
    assert "JOB_TIMEOUT" in done["error"] and done["progress"] < 100
    check_response(client.get("/openapi.json").get_json(), "/jobs/{job_id}", "get", 200, done)


@pytest.mark.parametrize(("priority", "value"), [("high", 10), ("normal", 0), ("LOW", -10), (-3, -3)])
def test_priority_as_a_name_or_a_number(tmp_path: Path, priority: object, value: int) -> None:
    client = paused_app(tmp_path).test_client()
    assert submit(client, steps=1, priority=priority)["priority"] == value


def test_priority_names_order_the_queue(tmp_path: Path) -> None:
    client = paused_app(tmp_path).test_client()
    low, normal, high = (submit(client, steps=1, priority=p)["id"] for p in ("low", "normal", "high"))
    assert [job(client, i)["position"] for i in (high, normal, low)] == [0, 1, 2]
    refused = client.post("/generate/text2img", json={"prompt": "x", "priority": "urgent"})
    assert refused.status_code == 400 and refused.get_json()["error"]["details"][0]["field"] == "priority"


def test_queue_status_in_the_seed_shape(tmp_path: Path) -> None:
    client = paused_app(tmp_path).test_client()
    submit(client, steps=1)
    status = client.get("/queue/status").get_json()
    assert {k: status[k] for k in ("queuedJobs", "processingJobs", "completedJobs", "failedJobs")} == {
        "queuedJobs": 1, "processingJobs": 0, "completedJobs": 0, "failedJobs": 0}
    assert status["averageProcessingTime"] == 0  # a number, as in the seed, before any job completed
