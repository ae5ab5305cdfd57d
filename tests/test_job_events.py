"""Job events: durations from the job's own timestamps, the model label, and listeners that cannot hurt a job."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conftest import make_settings, wait_for
from sdedge.config import Settings
from sdedge.job_events import JobEvent, JobEvents, event_for, job_model, stage_seconds
from sdedge.job_store import Job, JobStatus, JobStore
from test_metrics import scrape, value


def job(**params: object) -> Job:
    return Job("job-1", "img2img", JobStatus.RUNNING, 3, {}, dict(params), created_at=100.0, started_at=102.5)


def test_durations_come_from_the_job_and_the_model_from_its_params() -> None:
    ended = event_for("succeeded", job(model="dreamshaper"), model="default/repo", node="node-a", now=110.0)
    assert (ended.queue_wait_seconds, ended.run_seconds, ended.model, ended.priority) == (2.5, 7.5, "dreamshaper", 3)
    started = event_for("started", job(), model="default/repo", node="node-a", now=110.0)
    assert started.run_seconds is None and started.model == "default/repo"
    assert job_model(job(model=""), "x") == "x"
    assert "run_seconds" not in started.to_dict() and started.to_dict()["queue_wait_seconds"] == 2.5


def test_stage_timings_become_seconds_by_stage() -> None:
    assert stage_seconds({"unet_ms": 250.0, "vae_decoder_ms": 100, "save_ms": 5.0, "generate_ms": 400, "x": "y"}) == {
        "denoise": 0.25, "decode": 0.1, "save": 0.005}


def test_a_failing_listener_is_logged_and_the_others_still_hear(caplog: pytest.LogCaptureFixture) -> None:
    events, heard = JobEvents(), []
    events.subscribe(lambda event: 1 / 0)  # type: ignore[func-returns-value]
    events.subscribe(heard.append)
    event = JobEvent("submitted", "job-1", "text2img", "m", "n")
    with caplog.at_level(logging.ERROR):
        events.emit(event)
    assert heard == [event] and "listener failed" in caplog.text


def test_the_jobs_own_model_column_names_its_model() -> None:
    asked = job()
    asked.model = "library/sdxl-turbo"
    assert job_model(asked, "default/repo") == "library/sdxl-turbo"


# -- jobs taken back from a dead worker ----------------------------------------------------------------
def _events(caplog: pytest.LogCaptureFixture, job_id: str) -> list[dict[str, object]]:
    """The job events logged for job_id (every event is one sdedge.jobs record with its fields)."""
    from sdedge.json_logs import JOB_FIELDS

    return [fields for r in list(caplog.records) if (fields := getattr(r, JOB_FIELDS, None)) and
            fields["job_id"] == job_id]


def _stored(settings: Settings) -> JobStore:
    from sdedge.job_store import JobStore

    return JobStore(settings.job_database_url)


def test_jobs_a_crash_left_running_are_events_at_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sdedge.app import create_app
    from sdedge.nodes import node_id

    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    store, node = _stored(settings), node_id(settings.data_dir)
    twice = store.add("text2img", {"prompt": "x"}, {"prompt": "x"})[0].id
    store.claim_next(f"{node}:1:CPU", node=node)  # lost once before (so its second loss fails it) ...
    store.recover(f"{node}:1")
    store.claim_next(f"{node}:1:CPU", node=node)  # ... and claimed again by the process that was killed
    again = store.add("text2img", {"prompt": "x"}, {"prompt": "x"})[0].id
    store.claim_next(f"{node}:1:CPU", node=node)
    caplog.set_level(logging.INFO, logger="sdedge.jobs")
    app = create_app(settings, load_model=False)
    try:
        wait_for(lambda: _events(caplog, again) and _events(caplog, twice), timeout=30)
        assert [(e["event"], e["reason"]) for e in _events(caplog, again)] == [("requeued", "recovered")]
        failed = _events(caplog, twice)
        assert [(e["event"], e["reason"]) for e in failed] == [("failed", "recovered")]
        assert failed[0]["error"]["code"] == "interrupted"  # type: ignore[index]
        samples = scrape(app.test_client())
        assert value(samples, "sdedge_jobs_total", event="requeued") == 1
        assert value(samples, "sdedge_jobs_total", event="failed") == 1
    finally:
        app.extensions["sdedge"].shutdown()


def test_jobs_whose_lease_lapsed_are_events_of_the_node_that_takes_them_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sdedge.app import create_app

    settings = make_settings(tmp_path, lease_seconds=2.0)
    caplog.set_level(logging.INFO, logger="sdedge.jobs")
    app = create_app(settings, load_model=False)  # no engine: nothing it claims itself
    try:
        store = _stored(settings)
        job_id = store.add("text2img", {"prompt": "x"}, {"prompt": "x"})[0].id
        assert store.claim_next("node-elsewhere:7:CPU", node="node-elsewhere", lease_seconds=0.05)
        found = wait_for(lambda: _events(caplog, job_id), timeout=30)
        assert [(e["event"], e["reason"]) for e in found] == [("requeued", "lease_expired")]
        assert store.get(job_id).status is JobStatus.QUEUED
        assert value(scrape(app.test_client()), "sdedge_jobs_total", event="requeued", mode="text2img") == 1
    finally:
        app.extensions["sdedge"].shutdown()
