"""Authentication in-process on the real engine: who may call what once a user exists, and how."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authhelp import Account, add_account, basic
from conftest import make_settings, start_app, stop_app, wait_for

JOB = {"prompt": "a lighthouse", "seed": 3, "num_inference_steps": 2}
PAGE = {"Origin": "http://localhost", "Sec-Fetch-Mode": "cors"}  # what a browser adds to the page's own requests


@pytest.fixture
def alice(app: Flask) -> Account:
    return add_account(app, "alice")


def login(client: FlaskClient, account: Account) -> None:
    response = client.post("/auth/login", json={"username": account.name, "password": account.password}, headers=PAGE)
    assert response.status_code == 200, response.get_json()


def test_anonymous_submission_is_401_and_the_bearer_token_is_202(client: FlaskClient, alice: Account) -> None:
    anonymous = client.post("/generate/text2img", json=JOB)
    assert anonymous.status_code == 401
    error = anonymous.get_json()["error"]
    assert error["code"] == "unauthorized" and error["details"][0]["field"] == "Authorization"
    assert anonymous.headers["WWW-Authenticate"].startswith('Bearer realm="sdedge"')
    assert 'Basic realm="sdedge"' in anonymous.headers["WWW-Authenticate"]
    accepted = client.post("/generate/text2img", json=JOB, headers=alice.bearer)
    assert accepted.status_code == 202, accepted.get_json()
    done = wait_for(lambda: (j := client.get(f"/jobs/{accepted.get_json()['id']}", headers=alice.bearer).get_json())
                    ["status"] == "completed" and j)
    assert client.get(done["result"]["urls"][0], headers=alice.bearer).status_code == 200
    assert client.get(done["result"]["urls"][0]).status_code == 401


def test_basic_with_password_or_token_and_wrong_credentials(client: FlaskClient, alice: Account) -> None:
    assert client.get("/jobs", headers=alice.basic).status_code == 200
    assert client.get("/jobs", headers=basic("alice", alice.token)).status_code == 200
    for wrong in (basic("alice", "not-the-password"), basic("bob", alice.token), {"Authorization": "Bearer nope"},
                  {"Authorization": "Digest x"}):
        response = client.get("/jobs", headers=wrong)
        assert response.status_code == 401 and "WWW-Authenticate" in response.headers, wrong


def test_the_openai_surface_answers_401_in_its_own_shape(client: FlaskClient, alice: Account) -> None:
    response = client.get("/v1/models", headers={"Authorization": "Bearer sdedge_wrong"})
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers
    assert set(response.get_json()["error"]) == {"message", "type", "param", "code"}
    assert client.get("/v1/models", headers=alice.bearer).status_code == 200


def test_public_routes_and_the_minimal_health(client: FlaskClient, alice: Account) -> None:
    for path in ("/health/live", "/health/ready", "/", "/static/app.js", "/auth/session"):
        assert client.get(path).status_code == 200, path
    for path in ("/jobs", "/queue/status", "/modes", "/openapi.json", "/sdapi/v1/progress", "/v1/models"):
        assert client.get(path).status_code == 401, path
    anonymous = client.get("/health").get_json()
    assert set(anonymous) == {"status", "reason"}
    full = client.get("/health", headers=alice.bearer).get_json()
    assert "paths" in full and "versions" in full and full["access"] == {"auth_required": True, "user": "alice",
                                                                          "admin": False}
    assert client.get("/auth/session").get_json() == {"auth_required": True, "user": None, "notice": None}


def test_a_browser_gets_no_basic_challenge(client: FlaskClient, alice: Account) -> None:
    # A Basic challenge makes browsers pop up their own password dialog over the page's login form.
    response = client.get("/jobs", headers={"Sec-Fetch-Mode": "cors"})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == 'Bearer realm="sdedge"'


def test_login_sets_a_safe_session_cookie_and_logout_ends_it(client: FlaskClient, alice: Account) -> None:
    response = client.post("/auth/login", json={"username": "alice", "password": alice.password}, headers=PAGE)
    assert response.get_json()["user"] == {"name": "alice", "admin": False}
    cookie = response.headers["Set-Cookie"]
    assert "sdedge_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert client.get("/jobs").status_code == 200
    assert client.get("/auth/session").get_json()["user"]["name"] == "alice"
    assert client.post("/auth/logout", headers=PAGE).status_code == 200
    assert client.get("/jobs").status_code == 401


def test_the_cookie_is_secure_over_https(client: FlaskClient, alice: Account) -> None:
    response = client.post("/auth/login", json={"username": "alice", "password": alice.password},
                           base_url="https://localhost", headers={"Origin": "https://localhost"})
    assert response.status_code == 200 and "Secure" in response.headers["Set-Cookie"]


def test_a_new_password_ends_the_browser_session(app: Flask, client: FlaskClient, alice: Account) -> None:
    login(client, alice)
    app.extensions["sdedge"].accounts.set_password("alice", "a brand new password")
    assert client.get("/jobs").status_code == 401


def test_wrong_logins_are_throttled_per_address(tmp_path: Path) -> None:
    app = start_app(make_settings(tmp_path, login_rate_limit="3/minute"))
    alice = add_account(app, "alice")
    client = app.test_client()
    for _ in range(3):
        wrong = client.post("/auth/login", json={"username": "alice", "password": "guess-guess"}, headers=PAGE)
        assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "unauthorized"
    blocked = client.post("/auth/login", json={"username": "alice", "password": alice.password}, headers=PAGE)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert blocked.get_json()["error"]["code"] == "rate_limited"
    assert client.get("/jobs", headers=alice.basic).status_code == 429  # Basic guesses count the same
    other = app.test_client()
    assert other.get("/jobs", headers=alice.bearer, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200


def test_account_api_creates_lists_and_revokes_own_tokens(app: Flask, client: FlaskClient, alice: Account) -> None:
    bob = add_account(app, "bob")
    login(client, alice)
    made = client.post("/account/tokens", json={"label": "krita"}, headers=PAGE)
    assert made.status_code == 201
    token = made.get_json()
    assert token["token"].startswith("sdedge_") and token["label"] == "krita"
    assert client.get("/jobs", headers={"Authorization": f"Bearer {token['token']}"}).status_code == 200
    listed = client.get("/account/tokens").get_json()["tokens"]
    assert {t["label"] for t in listed} == {"test", "krita"} and all("token" not in t for t in listed)
    bobs = app.test_client().get("/account/tokens", headers=bob.bearer).get_json()["tokens"][0]
    assert client.delete(f"/account/tokens/{bobs['id']}", headers=PAGE).status_code == 404
    assert client.delete(f"/account/tokens/{token['id']}", headers=PAGE).status_code == 200
    assert client.get("/jobs", headers={"Authorization": f"Bearer {token['token']}"}).status_code == 401


def test_an_open_server_says_anyone_can_use_it(client: FlaskClient) -> None:
    health = client.get("/health").get_json()
    assert health["access"]["auth_required"] is False and "anyone on the network" in health["access"]["notice"]
    assert client.get("/auth/session").get_json()["auth_required"] is False
    assert client.get("/jobs", headers={"Authorization": "Bearer anything"}).status_code == 200
    assert client.get("/account/tokens").status_code == 409


def test_start_up_warns_when_an_open_server_listens_on_the_network(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    start_app(make_settings(tmp_path / "a", host="0.0.0.0"))
    start_app(make_settings(tmp_path / "b", host="127.0.0.1"))
    warnings = [r.getMessage() for r in caplog.records if "no accounts" in r.getMessage()]
    assert len(warnings) == 1 and "0.0.0.0" in warnings[0]


def test_sessions_survive_a_restart_with_the_key_kept_in_data_dir(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = start_app(settings)
    alice = add_account(first, "alice")
    browser = first.test_client()
    login(browser, alice)
    key_file = settings.data_dir / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_text()) >= 64
    stop_app(first)  # its engine goes to the restarted app
    second = start_app(make_settings(tmp_path))
    restarted = second.test_client()
    restarted.set_cookie("sdedge_session", browser.get_cookie("sdedge_session").value)  # type: ignore[union-attr]
    assert restarted.get("/jobs").status_code == 200
    other = start_app(make_settings(tmp_path / "other", secret_key="x" * 40))
    assert other.secret_key == "x" * 40
