"""Ownership, checked once in the generation service: users see and control only their own jobs and
files (another user's are 404, like jobs that do not exist); admins see and control all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authhelp import Account, add_account
from conftest import _apps, make_settings, wait_for
from sdedge.app import create_app

SLOW = {"width": 512, "height": 512, "num_inference_steps": 60}  # long enough to act on while it runs


@pytest.fixture
def people(app: Flask) -> dict[str, Account]:
    return {name: add_account(app, name, admin=name == "root") for name in ("alice", "bob", "root")}


def submit(client: FlaskClient, who: Account, **fields: Any) -> dict[str, Any]:
    response = client.post("/generate/text2img", json={"prompt": f"{who.name}'s secret prompt", "seed": 1,
                                                       "num_inference_steps": 2, **fields}, headers=who.bearer)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def finished(client: FlaskClient, who: Account, job_id: str) -> dict[str, Any]:
    return wait_for(lambda: (j := client.get(f"/jobs/{job_id}", headers=who.bearer).get_json())["status"]
                    in ("completed", "failed", "canceled") and j, 120)


def test_a_user_cannot_see_cancel_or_delete_another_users_job(client: FlaskClient,
                                                              people: dict[str, Account]) -> None:
    alice, bob = people["alice"], people["bob"]
    job = finished(client, bob, submit(client, bob)["id"])
    image = job["result"]["urls"][0]
    for method, path in (("GET", f"/jobs/{job['id']}"), ("GET", f"/jobs/{job['id']}/events"),
                         ("POST", f"/jobs/{job['id']}/cancel"), ("DELETE", f"/jobs/{job['id']}"), ("GET", image)):
        response = client.open(path, method=method, headers=alice.bearer)
        assert response.status_code == 404, (method, path, response.status_code)
    assert client.get(f"/jobs?before={job['id']}", headers=alice.bearer).status_code == 404
    assert client.get("/jobs", headers=alice.bearer).get_json()["jobs"] == []
    own = client.get(image, headers=bob.bearer)
    assert own.status_code == 200 and "private" in own.headers["Cache-Control"]  # no shared cache keeps it
    assert client.delete(f"/jobs/{job['id']}", headers=bob.bearer).status_code == 200


def test_an_admin_sees_and_controls_every_job(client: FlaskClient, people: dict[str, Account]) -> None:
    alice, bob, root = people["alice"], people["bob"], people["root"]
    jobs = [finished(client, who, submit(client, who)["id"]) for who in (alice, bob)]
    listed = client.get("/jobs", headers=root.bearer).get_json()["jobs"]
    assert {j["id"] for j in listed} == {j["id"] for j in jobs}
    assert [j["id"] for j in client.get("/jobs", headers=alice.bearer).get_json()["jobs"]] == [jobs[0]["id"]]
    assert client.get(jobs[1]["result"]["urls"][0], headers=root.bearer).status_code == 200
    assert client.delete(f"/jobs/{jobs[1]['id']}", headers=root.bearer).status_code == 200


def test_cancel_of_another_users_queued_job_is_404_and_leaves_it(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), load_model=False)  # no engine: jobs stay queued
    _apps.append(app)
    alice, bob, root = (add_account(app, name, admin=name == "root") for name in ("alice", "bob", "root"))
    client = app.test_client()
    queued = submit(client, bob)
    assert client.post(f"/jobs/{queued['id']}/cancel", headers=alice.bearer).status_code == 404
    assert client.get(f"/jobs/{queued['id']}", headers=bob.bearer).get_json()["status"] == "queued"
    assert client.post(f"/jobs/{queued['id']}/cancel", headers=root.bearer).get_json()["status"] == "canceled"


def test_same_idempotency_key_of_two_users_makes_two_jobs(client: FlaskClient, people: dict[str, Account]) -> None:
    alice, bob = people["alice"], people["bob"]
    key = {"Idempotency-Key": "same-key"}
    first = client.post("/generate/text2img", json={"prompt": "x"}, headers={**alice.bearer, **key}).get_json()
    again = client.post("/generate/text2img", json={"prompt": "x"}, headers={**alice.bearer, **key}).get_json()
    other = client.post("/generate/text2img", json={"prompt": "x"}, headers={**bob.bearer, **key})
    assert first["id"] == again["id"] and other.status_code == 202 and other.get_json()["id"] != first["id"]


def test_interrupt_stops_only_the_callers_running_job(client: FlaskClient, people: dict[str, Account]) -> None:
    alice, bob = people["alice"], people["bob"]
    running = submit(client, bob, **SLOW)
    wait_for(lambda: client.get(f"/jobs/{running['id']}", headers=bob.bearer).get_json()["status"] == "processing")
    assert client.post("/sdapi/v1/interrupt", headers=alice.bearer).status_code == 200
    assert client.post("/sdapi/v1/skip", headers=alice.bearer).status_code == 200
    store = client.application.extensions["sdedge"].generation.job_store
    assert store.get(running["id"]).cancel_requested is False, "alice's interrupt flagged bob's job"
    progress = client.get("/sdapi/v1/progress", headers=alice.bearer).get_json()
    assert progress["current_image"] is None and progress["state"]["job"] == ""
    queue = client.get("/queue/status", headers=alice.bearer).get_json()
    assert queue["processingJobs"] == 1 and queue["currentJob"]["id"] is None
    assert [j["id"] for j in queue["runningJobs"]] == [None]
    assert running["id"] not in json.dumps(queue)  # nor in the nodes' worker listing
    assert "secret prompt" not in json.dumps(queue) + json.dumps(progress)
    own = client.get("/queue/status", headers=bob.bearer).get_json()
    assert own["currentJob"]["id"] == running["id"] and [j["id"] for j in own["runningJobs"]] == [running["id"]]
    assert client.post("/sdapi/v1/interrupt", headers=bob.bearer).status_code == 200
    assert finished(client, bob, running["id"])["status"] == "canceled"
