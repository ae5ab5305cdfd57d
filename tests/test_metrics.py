"""GET /metrics: the Prometheus text format, parsed by prometheus_client's own parser; counters move as
jobs are submitted, succeed, fail and are canceled on the real engine; the scrape token and accounts."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from authhelp import add_account
from conftest import make_settings, start_app, stop_app, wait_for
from sdedge.config import Settings

SMALL = {"width": 64, "height": 64, "steps": 2}


def scrape(client: FlaskClient, headers: dict[str, str] | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and sorted labels."""
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of the samples of name whose labels include labels."""
    return sum(v for (n, found), v in samples.items() if n == name and set(labels.items()) <= set(found))


def finished(client: FlaskClient, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = client.get(f"/jobs/{job_id}").get_json()
        return job if job["status"] in ("completed", "failed", "canceled") else None
    found: dict[str, Any] = wait_for(done, timeout=120)
    return found


def submit(client: FlaskClient, **fields: Any) -> str:
    response = client.post("/generate/text2img", json={"prompt": "a red cube", **SMALL, **fields})
    assert response.status_code == 202, response.get_json()
    return str(response.get_json()["id"])


def test_counters_move_as_jobs_succeed_fail_and_are_canceled(app: Flask, client: FlaskClient,
                                                             settings: Settings) -> None:
    before = scrape(client)
    model = app.extensions["sdedge"].loader.model_name()  # the default model's id, as GET /models lists it
    assert value(before, "sdedge_jobs_total", event="submitted") == 0
    assert value(before, "sdedge_model_state", state="ready", model=model) == 1
    assert value(before, "sdedge_model_loads_total", outcome="ready") == 1

    assert finished(client, submit(client))["status"] == "completed"
    settings.job_timeout = 1e-6  # the next job runs out of time at its first step: a real failure path
    try:
        failed = finished(client, submit(client, steps=4))
    finally:
        settings.job_timeout = 900.0
    assert failed["status"] == "failed" and failed["errorDetail"]["code"] == "timeout"
    queued = submit(client, steps=50)
    client.post(f"/jobs/{queued}/cancel")
    assert finished(client, queued)["status"] == "canceled"
    assert client.get("/no-such-page").status_code == 404

    after = scrape(client)
    job_model = app.extensions["sdedge"].loader.model_name()  # jobs are labelled by their model's id (GET /models)
    jobs = {event: value(after, "sdedge_jobs_total", event=event, mode="text2img", model=job_model)
            for event in ("submitted", "completed", "failed", "canceled")}
    assert jobs == {"submitted": 3, "completed": 1, "failed": 1, "canceled": 1}  # the API's status names
    assert value(after, "sdedge_job_duration_seconds_count", status="completed") == 1
    assert value(after, "sdedge_job_queue_wait_seconds_count") >= 2
    # genai reports no text-encoder duration on this runtime for the tiny model (it is counted when reported)
    for stage in ("denoise_step", "decode", "save"):
        assert value(after, "sdedge_stage_seconds_count", stage=stage) == 1, stage
        assert value(after, "sdedge_stage_seconds_sum", stage=stage) > 0, stage
    assert value(after, "sdedge_jobs_stored", status="completed", mode="text2img") == 1
    assert value(after, "sdedge_jobs_stored", status="failed") == 1
    statuses = {dict(labels).get(key) for (name, labels) in after for key in ("status", "event")} - {None}
    assert not statuses & {"succeeded", "running"}, statuses  # never the database's names
    assert value(after, "sdedge_queue_depth") == 0
    worker = [labels for (name, labels), v in after.items() if name == "sdedge_worker_info" and v == 1]
    assert len(worker) == 1 and dict(worker[0])["device"] == "CPU" and dict(worker[0])["model"]
    assert value(after, "sdedge_output_free_bytes") > 0
    assert value(after, "sdedge_http_requests_total", route="/generate/text2img", status="202") == 3
    assert value(after, "sdedge_http_requests_total", route="<unmatched>", status="404") == 1


def test_loads_of_other_models_for_jobs_are_counted_with_the_switches(tmp_path: Any) -> None:
    from pathlib import Path

    library = Path(tmp_path) / "library"
    library.mkdir()
    (library / "second").symlink_to(Path(__file__).parent / "fixtures" / "tiny-sdxl-int8-ov", target_is_directory=True)
    app = start_app(make_settings(tmp_path, models_dir=library))
    client = app.test_client()
    default = app.extensions["sdedge"].loader.model_name()
    for model in ("second", default):  # MAX_LOADED_MODELS=1: each job switches
        assert finished(client, submit(client, model=model))["status"] == "completed"
    samples = scrape(client)
    assert value(samples, "sdedge_model_loads_total", model="second", outcome="ready") == 1
    assert value(samples, "sdedge_model_loads_total", model=default, outcome="ready") == 2  # start-up, switch back
    assert value(samples, "sdedge_model_switches_total") == 2
    assert value(samples, "sdedge_model_load_seconds_total", model="second") > 0


def test_queue_depth_by_priority(settings: Settings) -> None:
    from sdedge.app import create_app

    app = create_app(settings, load_model=False)  # no engine: nothing leaves the queue
    try:
        client = app.test_client()
        for priority in (0, 0, 5):
            assert client.post("/generate/text2img", json={"prompt": "x", "priority": priority}).status_code == 202
        samples = scrape(client)
        assert value(samples, "sdedge_queue_depth", priority="0") == 2
        assert value(samples, "sdedge_queue_depth", priority="5") == 1
        assert value(samples, "sdedge_model_state", state="starting") == 1
    finally:
        app.extensions["sdedge"].shutdown()


def test_every_app_has_its_own_registry(settings: Settings, tmp_path: Any) -> None:
    from sdedge.app import create_app

    first = create_app(settings, load_model=False)
    second = create_app(make_settings(tmp_path / "two"), load_model=False)
    try:
        first.test_client().post("/generate/text2img", json={"prompt": "x"})
        assert value(scrape(first.test_client()), "sdedge_jobs_total", event="submitted") == 1
        assert value(scrape(second.test_client()), "sdedge_jobs_total", event="submitted") == 0
    finally:
        first.extensions["sdedge"].shutdown()
        second.extensions["sdedge"].shutdown()


def test_scrape_token_and_accounts(tmp_path: Any) -> None:
    app = start_app(make_settings(tmp_path, metrics_token="prom-secret-123"))
    client = app.test_client()
    assert client.get("/metrics").status_code == 401  # open server, but METRICS_TOKEN is set
    scrape(client, {"Authorization": "Bearer prom-secret-123"})
    alice = add_account(app, "alice")
    refused = client.get("/metrics")
    assert refused.status_code == 401 and "Bearer" in refused.headers["WWW-Authenticate"]
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scrape(client, {"Authorization": "Bearer prom-secret-123"})
    scrape(client, alice.bearer)  # a signed-in user may look too
    assert client.get("/jobs", headers={"Authorization": "Bearer prom-secret-123"}).status_code == 401


def test_with_accounts_and_no_scrape_token_a_user_is_needed(app: Flask, client: FlaskClient) -> None:
    alice = add_account(app, "alice")
    assert client.get("/metrics").status_code == 401
    assert value(scrape(client, alice.basic), "sdedge_build_info") == 1


def test_a_shared_fleet_database_shows_every_nodes_workers(tmp_path: Any) -> None:
    from pgserver import PostgresServer

    postgres = PostgresServer().init().start()
    try:
        url = postgres.create_database("metrics_fleet")
        alpha = start_app(make_settings(tmp_path / "alpha", database_url=url, node_name="alpha"))
        start_app(make_settings(tmp_path / "beta", database_url=url, node_name="beta"))
        client = alpha.test_client()

        def names() -> set[str] | None:
            found = {dict(labels)["node_name"] for (name, labels), v in scrape(client).items()
                     if name == "sdedge_worker_info" and v == 1}
            return found if found == {"alpha", "beta"} else None
        assert wait_for(names, timeout=30)
    finally:
        import conftest

        for app in list(conftest._apps):  # the apps start_app made, stopped before the database goes away
            stop_app(app)
        postgres.remove()


def test_a_database_outage_is_a_metric_not_a_failed_scrape(settings: Settings, monkeypatch: Any) -> None:
    from sqlalchemy.exc import OperationalError

    from sdedge.app import create_app

    app = create_app(settings, load_model=False)
    try:
        store = app.extensions["sdedge"].generation.job_store

        def unreachable(*names: str) -> list[Any]:
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        assert value(scrape(app.test_client()), "sdedge_database_up") == 1
        monkeypatch.setattr(store, "tally", unreachable)
        down = scrape(app.test_client())
        assert value(down, "sdedge_database_up") == 0 and value(down, "sdedge_model_state", state="starting") == 1
        assert not [name for name, _ in down if name == "sdedge_queue_depth"]
    finally:
        app.extensions["sdedge"].shutdown()
