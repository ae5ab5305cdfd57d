"""A real `sdedge serve` with accounts made by the CLI: unmodified `webuiapi` (set_auth) and `openai`
(api_key=<token>) clients work; without the credential they are refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
import webuiapi

from authhelp import server_with_account
from clients import seed_000
from serverproc import ServerProcess

PASSWORD = "a long test password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with server_with_account(tmp_path_factory.mktemp("accounts"), PASSWORD) as running:
        yield running.proc, running.token


def post(base: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read()), answer.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers


def test_anonymous_submission_is_401_and_bearer_is_202(server: tuple[ServerProcess, str]) -> None:
    proc, token = server
    status, body, headers = post(proc.base, "/generate/text2img", {"prompt": "a bridge"})
    assert status == 401 and body["error"]["code"] == "unauthorized" and "Bearer" in headers["WWW-Authenticate"]
    status, body, _ = post(proc.base, "/generate/text2img", {"prompt": "a bridge", "num_inference_steps": 1},
                           {"Authorization": f"Bearer {token}"})
    assert status == 202 and body["status"] in ("queued", "processing")


def test_webuiapi_with_set_auth_works_unmodified(server: tuple[ServerProcess, str]) -> None:
    proc, _ = server
    api = webuiapi.WebUIApi(baseurl=f"{proc.base}/sdapi/v1", sampler="Euler a", steps=2)
    with pytest.raises(RuntimeError) as refused:  # webuiapi raises RuntimeError(status, text) on non-200
        api.txt2img(prompt="a lighthouse", width=64, height=64)
    assert refused.value.args[0] == 401
    api.set_auth("alice", PASSWORD)
    result = api.txt2img(prompt="a lighthouse", seed=5, width=64, height=64)
    assert result.images[0].size == (64, 64) and result.info["seed"] == 5


def test_openai_with_the_token_as_api_key_works_unmodified(server: tuple[ServerProcess, str]) -> None:
    proc, token = server
    client = openai.OpenAI(base_url=f"{proc.base}/v1", api_key=token, max_retries=0, timeout=120)
    result = client.images.generate(prompt="a red square", size="64x64", extra_body={"num_inference_steps": 2})
    assert result.data[0].b64_json
    wrong = openai.OpenAI(base_url=f"{proc.base}/v1", api_key="sdedge_not-a-token", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.images.generate(prompt="a red square", size="64x64")
    assert caught.value.status_code == 401


def test_the_page_and_minimal_health_stay_public(server: tuple[ServerProcess, str]) -> None:
    proc, token = server
    assert requests.get(f"{proc.base}/", timeout=30).status_code == 200
    assert set(requests.get(f"{proc.base}/health", timeout=30).json()) == {"status", "reason"}
    full = requests.get(f"{proc.base}/health", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    assert full["access"]["user"] == "alice" and "versions" in full
    evil = requests.get(f"{proc.base}/health/live", headers={"Host": "attacker.example"}, timeout=30)
    assert evil.status_code == 400


def login_cookie(base: str, **headers: str) -> str:
    answer = requests.post(f"{base}/auth/login", json={"username": "alice", "password": PASSWORD},
                           headers={"Origin": base, **headers}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.headers["Set-Cookie"]


def test_forwarded_headers_count_only_from_the_trusted_proxy(server: tuple[ServerProcess, str],
                                                             tmp_path: Path) -> None:
    proc, _ = server
    assert "Secure" not in login_cookie(proc.base, **{"X-Forwarded-Proto": "https"})  # no TRUSTED_PROXY: ignored
    with server_with_account(tmp_path, PASSWORD, TRUSTED_PROXY="127.0.0.1") as behind:
        assert "Secure" in login_cookie(behind.base, **{"X-Forwarded-Proto": "https"})
        assert "Secure" not in login_cookie(behind.base)


def test_the_seed_000_client_is_refused_without_a_token(server: tuple[ServerProcess, str]) -> None:
    assert seed_000.refused_without_token(server[0].base) == 401  # "secure user access", as the seed says
