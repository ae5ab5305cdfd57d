"""Fair use: one user flooding gets 429 with Retry-After (rate limit, queue share) while others still queue."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from authhelp import add_account
from conftest import _apps, make_settings
from sdedge.app import create_app

JOB = {"prompt": "a crowd", "num_inference_steps": 1}


def paused_app(tmp_path: Path, **overrides: object) -> Flask:
    """No engine loading: every accepted job stays queued."""
    app = create_app(make_settings(tmp_path, **overrides), load_model=False)
    _apps.append(app)
    return app


def test_one_user_flooding_gets_429_while_another_users_job_still_queues(tmp_path: Path) -> None:
    app = paused_app(tmp_path, rate_limit="3/minute")
    alice, bob = add_account(app, "alice"), add_account(app, "bob")
    client = app.test_client()
    codes = [client.post("/generate/text2img", json=JOB, headers=alice.bearer).status_code for _ in range(5)]
    assert codes == [202, 202, 202, 429, 429]
    limited = client.post("/generate/text2img", json=JOB, headers=alice.bearer)
    assert limited.get_json()["error"]["code"] == "rate_limited" and 1 <= int(limited.headers["Retry-After"]) <= 60
    openai = client.post("/v1/images/generations", json={"prompt": "x"}, headers=alice.bearer)
    assert openai.status_code == 429 and openai.get_json()["error"]["type"] == "rate_limit_error"
    assert "Retry-After" in openai.headers
    assert client.get("/jobs", headers=alice.bearer).status_code == 200  # reading is not limited
    assert client.post("/generate/text2img", json=JOB, headers=bob.bearer).status_code == 202


def test_the_rate_limit_counts_per_address_on_an_open_server(tmp_path: Path) -> None:
    client = paused_app(tmp_path, rate_limit="2/minute").test_client()
    here, there = {"REMOTE_ADDR": "192.168.1.10"}, {"REMOTE_ADDR": "192.168.1.11"}
    codes = [client.post("/generate/text2img", json=JOB, environ_base=here).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    assert client.post("/generate/text2img", json=JOB, environ_base=there).status_code == 202


def test_a_users_share_of_the_queue_is_limited(tmp_path: Path) -> None:
    app = paused_app(tmp_path, max_queued_per_user=2, max_queue_size=10)
    alice, bob = add_account(app, "alice"), add_account(app, "bob")
    client = app.test_client()
    first = [client.post("/generate/text2img", json=JOB, headers=alice.bearer) for _ in range(2)]
    assert [r.status_code for r in first] == [202, 202]
    over = client.post("/generate/text2img", json=JOB, headers=alice.bearer)
    assert over.status_code == 429 and over.headers["Retry-After"].isdigit()
    assert over.get_json()["error"]["details"][0]["type"] == "user_queue_full"
    assert client.post("/generate/text2img", json=JOB, headers=bob.bearer).status_code == 202
    client.post(f"/jobs/{first[0].get_json()['id']}/cancel", headers=alice.bearer)
    assert client.post("/generate/text2img", json=JOB, headers=alice.bearer).status_code == 202
