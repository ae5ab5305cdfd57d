"""Shared fixtures: settings on a temp folder and the tiny model, the app, a test client, and the OpenAPI
document of a module's running server."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import serverproc
from sdedge.app import create_app
from sdedge.config import Settings

FIXTURE_MODEL = serverproc.FIXTURE_MODEL
# One OpenVINO compile cache for the whole run: every app and server compiles the same tiny models, and a
# warm cache turns each start's compile into a read. (Tests of the cache itself use their own folder.)
SHARED_COMPILE_CACHE = Path(tempfile.mkdtemp(prefix="sdedge-test-ov-cache-"))
serverproc.EXTRA_ENV["COMPILE_CACHE_DIR"] = str(SHARED_COMPILE_CACHE)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No server process outlives the test run, whatever failed."""
    from serverproc import stop_all

    stop_all()
    shutil.rmtree(SHARED_COMPILE_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own environment and .env out of the tests."""
    for name in list(os.environ):
        if name in Settings.model_fields or name.lower() in Settings.model_fields:
            monkeypatch.delenv(name)
    for name in ("HF_TOKEN", "HUGGINGFACE_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.01) -> Any:
    """Poll a condition until it is truthy and return its value; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings that use the tiny fixture model on the CPU and keep all files under tmp_path."""
    values: dict[str, object] = {
        "stable_diffusion_repo_id": str(FIXTURE_MODEL),
        "models_cache_dir": tmp_path / "models",
        "compile_cache_dir": SHARED_COMPILE_CACHE,
        "generated_images_dir": tmp_path / "generated",
        "data_dir": tmp_path / "data",
        "openvino_device": "CPU",
        "auto_download_models": False,
        "default_size": 64,
        "default_steps": 3,
        "min_size": 32,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg,arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


_apps: list[Flask] = []


def start_app(settings: Settings) -> Flask:
    """An app whose engine finished loading (ready or not) before the test starts; stopped after it."""
    app = create_app(settings)
    _apps.append(app)
    # generous: on a loaded 2-core machine a compile can take minutes; the bound only catches a hang
    assert app.extensions["sdedge"].loader.wait(timeout=600), "engine did not finish loading"
    return app


@pytest.fixture(autouse=True)
def _stop_apps() -> Iterator[None]:
    """Stop every app's worker thread after its test, so none keeps using the CPU."""
    yield
    while _apps:
        _apps.pop().extensions["sdedge"].shutdown()


@pytest.fixture
def app(settings: Settings) -> Flask:
    return start_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def doc(server: serverproc.ServerProcess) -> dict[str, Any]:
    """The OpenAPI document served by the module's `server` (a running ServerProcess)."""
    status, body = server.request("GET", "/openapi.json")
    assert status == 200
    return body  # type: ignore[no-any-return]
