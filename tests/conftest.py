"""Shared fixtures: settings on a temp folder and the tiny model, the app, a test client, and the OpenAPI
document of a module's running server."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import serverproc
from engine_shelf import EngineShelf, Lender, held_engines
from sdedge.app import create_app
from sdedge.config import Settings

FIXTURE_MODEL = serverproc.FIXTURE_MODEL
# One OpenVINO compile cache for the whole run: every app and server compiles the same tiny models, and a
# warm cache turns each start's compile into a read. (Tests of the cache itself use their own folder.)
SHARED_COMPILE_CACHE = Path(tempfile.mkdtemp(prefix="sdedge-test-ov-cache-"))
serverproc.EXTRA_ENV["COMPILE_CACHE_DIR"] = str(SHARED_COMPILE_CACHE)
# Loaded engines, lent to one app after another (tests/engine_shelf.py says when one is shared and when not).
ENGINES = EngineShelf()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No server process outlives the test run, whatever failed."""
    from serverproc import stop_all

    stop_all()
    ENGINES.clear()
    shutil.rmtree(SHARED_COMPILE_CACHE, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ENGINES.built or ENGINES.reused:
        terminalreporter.write_line(f"engines: {ENGINES.built} loaded, {ENGINES.reused} reused from the shelf")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own environment and .env out of the tests."""
    strip_env(monkeypatch)


def strip_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take every sdedge setting and hub variable out of the environment (until monkeypatch undoes it)."""
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
_lenders: dict[int, Lender] = {}  # by id(app): where each started app's engines go back when it stops
_fresh_engines = False  # set per test from the fresh_engine marker


def start_app(settings: Settings, *, fresh_engine: bool = False) -> Flask:
    """An app whose engine finished loading (ready or not) before the test starts; stopped after it.

    Its engines come from the shelf of loaded ones unless fresh_engine (or the test's fresh_engine mark)."""
    if fresh_engine or _fresh_engines:
        app = create_app(settings)
    else:
        lender = ENGINES.lender()
        app = create_app(settings, engine_factory=lender)
        _lenders[id(app)] = lender
    _apps.append(app)
    # generous: on a loaded 2-core machine a compile can take minutes; the bound only catches a hang
    assert app.extensions["sdedge"].loader.wait(timeout=600), "engine did not finish loading"
    return app


def stop_app(app: Flask) -> None:
    """Stop an app's workers, then put its engines back on the shelf (for apps that outlive one test)."""
    if app in _apps:
        _apps.remove(app)
    app.extensions["sdedge"].shutdown()
    lender = _lenders.pop(id(app), None)
    if lender:
        lender.give_back(held_engines(app.extensions["sdedge"].loaders))


@contextmanager
def module_app(tmp_path: Path, **overrides: object) -> Iterator[Flask]:
    """One app for a module of read-only tests (requests that are refused or only read), stopped at its end.

    Built in a clean environment: module fixtures are set up before the per-test _clean_env."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        strip_env(monkeypatch)
        app = start_app(make_settings(tmp_path, **overrides))
    _apps.remove(app)  # it outlives the test that started it
    try:
        yield app
    finally:
        stop_app(app)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Read the fresh_engine mark before any fixture of the test is set up (module-scoped apps included)."""
    global _fresh_engines
    _fresh_engines = item.get_closest_marker("fresh_engine") is not None


@pytest.fixture(autouse=True)
def _stop_apps() -> Iterator[None]:
    """Stop every app's worker thread after its test, so none keeps using the CPU; lend its engines again."""
    yield
    while _apps:
        stop_app(_apps[-1])


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
