"""The job API: submit, watch (JSON or Server-Sent Events), cancel, delete, queue statistics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, stream_with_context
from pydantic import BaseModel, ConfigDict, Field

from sdedge.auth import caller
from sdedge.job_view import ApiStatus, ImageForm
from sdedge.modes import MODES
from sdedge.openapi_spec import documented
from sdedge.principal import Principal
from sdedge.response_schemas import CanceledJob, DeletedJob, JobList, JobView, QueueStatus
from sdedge.routes.http_input import idempotency_key, query_args, request_body
from sdedge.service import MAX_LIST_LIMIT, GenerationService
from sdedge.services import services

bp = Blueprint("jobs", __name__)

SSE_HEARTBEAT_SECONDS = 15.0


_IMAGES = ("What result.images holds: `data` (data URLs, seed 002's) or `urls` (the file URLs, as result.urls: "
           "light polling without the base64).")


class JobQuery(BaseModel):
    """Query parameters of the routes answering one job."""

    model_config = ConfigDict(extra="ignore")

    images: ImageForm = Field(ImageForm.DATA, description=_IMAGES)


class JobListQuery(BaseModel):
    """Query parameters of GET /jobs."""

    model_config = ConfigDict(extra="ignore")

    status: ApiStatus | None = Field(None, description="Only jobs in this state.")
    limit: int = Field(50, ge=1, le=MAX_LIST_LIMIT, description=f"Page size, 1..{MAX_LIST_LIMIT}.")
    before: str | None = Field(None, min_length=1, max_length=64,
                               description="Page past this job id (the previous page's next_before).")
    images: ImageForm = Field(ImageForm.URLS, description=_IMAGES + " A list sends URLs unless asked for data.")


def submit_mode(mode: str) -> tuple[Response, int]:
    """Queue a job of one mode; 202 with the job (200 when an idempotency key matched)."""
    generation = services().generation
    body, files = request_body()
    submission = generation.submit(mode, body, files, idempotency_key(), caller=caller())
    return jsonify(generation.view(submission.job)), 202 if submission.created else 200


for _mode in MODES:
    bp.add_url_rule(f"/generate/{_mode.value}", f"submit_{_mode.value.replace('-', '_')}", submit_mode,
                    methods=["POST"], defaults={"mode": _mode.value})


@bp.get("/jobs/<job_id>")
@documented(query=JobQuery, responses={200: JobView})
def get_job(job_id: str) -> Response:
    """One job with progress, preview, result (images as data URLs; ?images=urls for links only) or error."""
    generation = services().generation
    query = query_args(JobQuery)
    return jsonify(generation.view(generation.get(job_id, caller()), query.images))


@bp.get("/jobs")
@documented(query=JobListQuery, responses={200: JobList})
def list_jobs() -> Response:
    """Jobs newest first; ?status=, ?limit= (<= 200), ?before= (a job's id, for paging), ?images=."""
    generation = services().generation
    query = query_args(JobListQuery)
    jobs, next_before = generation.list_jobs(query.status, query.limit, query.before, caller())
    return jsonify({"jobs": [generation.view(j, query.images) for j in jobs], "next_before": next_before})


@bp.post("/jobs/<job_id>/cancel")
@documented(query=JobQuery, responses={200: CanceledJob})
def cancel_job(job_id: str) -> Response:
    """Cancel a queued job now, or a running one at its next step."""
    generation = services().generation
    query = query_args(JobQuery)
    return jsonify({"success": True, **generation.view(generation.cancel(job_id, caller()), query.images)})


@bp.delete("/jobs/<job_id>")
@documented(responses={200: DeletedJob})
def delete_job(job_id: str) -> Response:
    """Remove a finished job and its images."""
    return jsonify({"deleted": services().generation.delete(job_id, caller()).id})


@bp.get("/queue/status")
@documented(responses={200: QueueStatus})
def queue_status() -> Response:
    """Queue statistics in the seed's field names, plus the running job."""
    return jsonify(services().generation.queue_status(caller()))


@bp.get("/jobs/<job_id>/events")
@documented(query=JobQuery, response_content="text/event-stream")
def job_events(job_id: str) -> Response:
    """Server-Sent Events: `progress` (with the phase: loading model, generating) and `preview` as they happen,
    `done` (the job's view) at the end."""
    generation = services().generation
    who = caller()
    images = query_args(JobQuery).images
    generation.get(job_id, who)  # 404 before the stream starts
    stream = stream_with_context(_event_stream(generation, job_id, who, images))
    return Response(stream, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _event_stream(generation: GenerationService, job_id: str, who: Principal, images: ImageForm) -> Iterator[str]:
    sent: dict[str, Any] = {"progress": None, "preview": None}
    seen = generation.notifier.version()
    last_sent = time.monotonic()
    while True:
        job = generation.get(job_id, who)
        # the done event carries the whole view; progress events need no images
        view = generation.view(job, images if job.status.finished else ImageForm.URLS)
        events = _new_events(view, sent)
        if events:
            yield "".join(events)
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > SSE_HEARTBEAT_SECONDS:
            yield ": keep-alive\n\n"  # keeps proxies from closing an idle stream
            last_sent = time.monotonic()
        if ApiStatus(view["status"]).finished:
            return
        seen = generation.notifier.wait(seen, generation.settings.worker_poll_seconds)


def _new_events(view: dict[str, Any], sent: dict[str, Any]) -> list[str]:
    """The events a job view adds to what the stream already sent."""
    events = []
    detail = view["progressDetail"]
    progress = {**detail, "phase": view["phase"]}  # a model load's progress is news too
    if progress != sent["progress"]:
        sent["progress"] = progress
        events.append(_sse("progress", {**progress, "progress": view["progress"], "status": view["status"],
                                        "position": view["position"], "eta_seconds": view["eta_seconds"],
                                        "model": view["model"]}))
    if view["preview_url"] and view["preview_url"] != sent["preview"]:
        sent["preview"] = view["preview_url"]
        events.append(_sse("preview", {"url": view["preview_url"], "step": detail["step"]}))
    if ApiStatus(view["status"]).finished:
        events.append(_sse("done", view))
    return events


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"
