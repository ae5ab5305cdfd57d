"""Job events: durations from the job's own timestamps, the model label, and listeners that cannot hurt a job."""

from __future__ import annotations

import logging

import pytest

from sdedge.job_events import JobEvent, JobEvents, event_for, job_model, stage_seconds
from sdedge.job_store import Job, JobStatus


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
