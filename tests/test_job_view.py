"""The public job view: seed 002's names and types, built from a job row (no engine, no database)."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from sdedge.job_store import Job, JobStatus
from sdedge.job_view import ApiStatus, Files, ImageForm, LiveState, api_counts, api_status, error_text, render

PNG = b"\x89PNG\r\n\x1a\nfake"


def a_job(status: JobStatus, **fields: Any) -> Job:
    return Job(id="job-0123456789abcdef", type="text2img", status=status, priority=0, request={"prompt": "x"},
               params={}, created_at=1_700_000_000.0, **fields)


def live(step: int = 0, total: int = 4) -> LiveState:
    return LiveState(position=None, step=step, total=total, eta_seconds=None, preview_url=None, node=None)


FILES = Files(url=lambda name: f"/generated/{name}", read=lambda name: PNG if name.endswith("-0.png") else None,
              model="tiny")


def test_every_stored_status_has_the_seeds_name() -> None:
    assert {api_status(s).value for s in JobStatus} == {"queued", "processing", "completed", "failed", "canceled"}
    assert api_status(JobStatus.RUNNING) is ApiStatus.PROCESSING and ApiStatus.COMPLETED.stored is JobStatus.SUCCEEDED
    assert [s for s in ApiStatus if s.finished] == [ApiStatus.COMPLETED, ApiStatus.FAILED, ApiStatus.CANCELED]
    assert api_counts({"running": 2, "succeeded": 5}) == {"queued": 0, "processing": 2, "completed": 5,
                                                          "failed": 0, "canceled": 0}


def test_a_completed_job() -> None:
    job = a_job(JobStatus.SUCCEEDED, started_at=1_700_000_001.0, finished_at=1_700_000_003.5,
                result={"files": ["a-0.png", "a-1.png"], "seed": 7, "seeds": [7, 8], "timings": {},
                        "parameters": {"prompt": "x", "guidance_scale": 7.5}})
    view = render(job, live(step=3), FILES)
    assert view["status"] == "completed" and view["progress"] == 100 and view["progressDetail"]["step"] == 4
    assert view["createdAt"] == "2023-11-14T22:13:20.000Z" and view["completedAt"] == "2023-11-14T22:13:23.500Z"
    result = view["result"]
    assert result["timeTaken"] == 2500 and result["urls"] == ["/generated/a-0.png", "/generated/a-1.png"]
    assert result["images"] == ["data:image/png;base64," + base64.b64encode(PNG).decode()]  # a-1 is gone
    assert result["parameters"]["guidanceScale"] == 7.5 and result["parameters"]["model"] == "tiny"
    assert "files" not in result and "model" not in result  # a result that named its model keeps it there too
    assert render(job, live(), FILES, ImageForm.URLS)["result"]["images"] == result["urls"]


@pytest.mark.parametrize(("step", "total", "progress"), [(0, 0, 0), (2, 3, 66), (4, 4, 99)])
def test_progress_is_a_whole_percent_that_reaches_100_only_when_completed(step: int, total: int,
                                                                           progress: int) -> None:
    view = render(a_job(JobStatus.RUNNING, started_at=1_700_000_001.0), live(step, total), FILES)
    assert view["status"] == "processing" and view["progress"] == progress and view["completedAt"] is None


def test_a_failed_jobs_error_is_a_string_with_the_structure_beside_it() -> None:
    error = {"code": "timeout", "message": "job exceeded JOB_TIMEOUT=1 s"}
    view = render(a_job(JobStatus.FAILED, error=error, finished_at=1_700_000_002.0), live(1), FILES)
    assert view["error"] == "job exceeded JOB_TIMEOUT=1 s" and view["errorDetail"] == error
    assert view["result"] is None and view["completedAt"] == "2023-11-14T22:13:22.000Z"
    assert error_text({"code": "canceled"}) == "canceled" and error_text(None) is None


def test_a_result_that_names_its_model_keeps_it_and_the_parameters_say_it() -> None:
    job = a_job(JobStatus.SUCCEEDED, model="studio", started_at=1.0, finished_at=2.0,
                result={"files": [], "seed": 1, "seeds": [1], "timings": {}, "parameters": {}, "model": "studio-v2"})
    result = render(job, live(), FILES)["result"]
    assert result["model"] == result["parameters"]["model"] == "studio-v2" and result["images"] == []
    job.result = {**(job.result or {}), "model": None}
    assert render(job, live(), FILES)["result"]["parameters"]["model"] == "studio"  # the job's own model
