"""Browser protections: cross-site changes with ambient credentials are refused, unknown Host names are
refused, and CORS headers go to CORS_ORIGINS only."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authhelp import Account, add_account
from conftest import make_settings, start_app
from sdedge.config import Settings
from sdedge.web_guard import HostAllowList, host_name

JOB = {"prompt": "a tram", "num_inference_steps": 1}


@pytest.fixture
def alice(app: Flask) -> Account:
    return add_account(app, "alice")


def logged_in(client: FlaskClient, alice: Account) -> FlaskClient:
    answer = client.post("/auth/login", json={"username": "alice", "password": alice.password},
                         headers={"Origin": "http://localhost"})
    assert answer.status_code == 200
    return client


def test_a_cookie_authenticated_post_from_another_site_is_refused(client: FlaskClient, alice: Account) -> None:
    logged_in(client, alice)
    evil = client.post("/generate/text2img", json=JOB, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and evil.get_json()["error"]["code"] == "forbidden"
    assert client.post("/sdapi/v1/interrupt", headers={"Referer": "http://evil.example/page"}).status_code == 403
    assert client.post("/generate/text2img", json=JOB).status_code == 403  # a cookie and no Origin at all
    own = client.post("/generate/text2img", json=JOB, headers={"Origin": "http://localhost"})
    assert own.status_code == 202
    referer = client.post("/sdapi/v1/interrupt", headers={"Referer": "http://localhost/"})
    assert referer.status_code == 200
    assert client.get("/jobs", headers={"Origin": "http://evil.example"}).status_code == 200  # reads are not changes


def test_bearer_requests_are_exempt_from_the_origin_rule(client: FlaskClient, alice: Account) -> None:
    response = client.post("/generate/text2img", json=JOB, headers={**alice.bearer, "Origin": "http://evil.example"})
    assert response.status_code == 202  # a token is never sent by a browser on its own


def test_an_open_server_refuses_cross_site_posts_too(client: FlaskClient) -> None:
    assert client.post("/generate/text2img", json=JOB, headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/generate/text2img", json=JOB).status_code == 202  # scripts send no Origin


def test_an_unknown_host_is_refused(client: FlaskClient) -> None:
    response = client.get("/health/live", headers={"Host": "attacker.example"})
    assert response.status_code == 400 and response.get_json()["error"]["details"][0]["field"] == "Host"
    for host in ("localhost:8000", "127.0.0.1:8000", "192.168.1.20", "[::1]:8000", "[fe80::1]",
                 socket.gethostname(), "box.localhost"):
        assert client.get("/health/live", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_replaces_the_automatic_list(tmp_path: Path) -> None:
    allowed = HostAllowList(make_settings(tmp_path, allowed_hosts="sd.example.org, .lan"))
    assert allowed.allows("sd.example.org") and allowed.allows("nuc.lan") and allowed.allows("lan")
    assert not allowed.allows("localhost") and not allowed.allows("192.168.1.20")
    assert HostAllowList(make_settings(tmp_path, allowed_hosts="*")).allows("anything.example")
    base = HostAllowList(make_settings(tmp_path, base_url="https://images.example.net/"))
    assert base.allows("images.example.net") and not base.allows("attacker.example")
    assert host_name("[::1]:8000") == "[::1]" and host_name("Box:80") == "box"


def cors_app(tmp_path: Path) -> Flask:
    return start_app(make_settings(tmp_path, cors_origins="http://192.168.1.20:3000"))


def test_a_listed_cors_origin_gets_the_cors_headers_and_an_unlisted_one_does_not(tmp_path: Path) -> None:
    app = cors_app(tmp_path)
    alice = add_account(app, "alice")
    client = app.test_client()
    listed = {"Origin": "http://192.168.1.20:3000"}
    preflight = client.options("/generate/text2img", headers={
        **listed, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://192.168.1.20:3000"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    posted = client.post("/generate/text2img", json=JOB, headers={**listed, **alice.bearer})
    assert posted.status_code == 202 and posted.headers["Access-Control-Allow-Origin"] == listed["Origin"]
    other = client.get("/jobs", headers={"Origin": "http://evil.example", **alice.bearer})
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers
    evil_preflight = client.options("/generate/text2img", headers={"Origin": "http://evil.example",
                                                                   "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in evil_preflight.headers


def test_no_cors_headers_without_cors_origins(client: FlaskClient) -> None:
    response = client.get("/health", headers={"Origin": "http://192.168.1.20:3000"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_listed_origin_may_post_without_a_token_on_an_open_server(tmp_path: Path) -> None:
    client = cors_app(tmp_path).test_client()
    response = client.post("/generate/text2img", json=JOB, headers={"Origin": "http://192.168.1.20:3000"})
    assert response.status_code == 202


def test_settings_split_lists(tmp_path: Path) -> None:
    settings: Settings = make_settings(tmp_path, cors_origins="http://a.example/ http://b.example:8080",
                                       allowed_hosts="One.Example,two.example")
    assert settings.cors_origin_list == ["http://a.example", "http://b.example:8080"]
    assert settings.allowed_host_names == ["one.example", "two.example"]
