"""The job API: submit, watch (JSON or Server-Sent Events), cancel, delete, queue statistics."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, jsonify, request, stream_with_context

from sdedge.app import Services, services
from sdedge.errors import InvalidRequest, ModelError, QueueFull, UnsupportedMediaType
from sdedge.jobs import Job, JobStatus
from sdedge.modes import prepare, stored_request
from sdedge.schemas import REQUEST_MODELS, GenerateRequest
from sdedge.worker import job_progress, remove_job_files

bp = Blueprint("jobs", __name__)

MAX_LIST_LIMIT = 200
SSE_HEARTBEAT_SECONDS = 15.0


def iso(timestamp: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 415/400 that says what was wrong with it."""
    if not request.is_json:
        raise UnsupportedMediaType("send a JSON body with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise InvalidRequest("malformed JSON body")
    if not isinstance(body, dict):
        raise InvalidRequest("the JSON body must be an object")
    return body


def file_url(svc: Services, filename: str) -> str:
    """Link to a generated file; absolute when BASE_URL is set."""
    return f"{svc.settings.base_url or ''}/generated/{filename}"


def job_view(svc: Services, job: Job) -> dict[str, Any]:
    """A job as clients see it."""
    live = svc.worker.current if svc.worker.current and svc.worker.current.job_id == job.id else None
    view: dict[str, Any] = {
        "id": job.id, "type": job.type, "status": job.status.value, "priority": job.priority,
        "position": svc.jobs.position(job) if job.status is JobStatus.QUEUED else None,
        "progress": job_progress(job, live),
        "eta_seconds": live.eta_seconds() if live else None,
        "preview_url": _preview_url(svc, job, live),
        "result": _result_view(svc, job.result),
        "error": job.error,
        "request": job.request,
        "attempts": job.attempts,
        "created_at": iso(job.created_at), "started_at": iso(job.started_at), "finished_at": iso(job.finished_at),
    }
    return view


def _preview_url(svc: Services, job: Job, live: Any) -> str | None:
    name = live.preview if live else (job.preview if job.status is JobStatus.RUNNING else None)
    return file_url(svc, name) + f"?v={job_progress(job, live)['step']}" if name else None


def _result_view(svc: Services, result: dict[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"images": [file_url(svc, f) for f in result["files"]],
            **{k: v for k, v in result.items() if k != "files"}}


def submit(svc: Services, job_type: str, body: dict[str, Any],
           files: dict[str, bytes] | None = None) -> tuple[Job, bool]:
    """Validate and queue a generation; the same idempotency key returns the first job."""
    if svc.worker.stopping:
        raise ModelError("the server is shutting down; retry shortly")
    parsed = REQUEST_MODELS[job_type].model_validate({**body, **(files or {})})
    key = request.headers.get("Idempotency-Key") or parsed.transaction_key
    if key and (existing := svc.jobs.find_by_key(key)):
        return existing, False
    _check_image_support(svc, parsed)
    _check_queue_room(svc)
    params, inputs = prepare(parsed, svc.settings, svc.inputs)
    job, created = svc.jobs.add(job_type, stored_request(body, parsed), {**params.to_dict(), "inputs": inputs},
                                priority=parsed.priority, idempotency_key=key)
    svc.notifier.notify()
    return job, created


def _check_image_support(svc: Services, parsed: GenerateRequest) -> None:
    if parsed.image_fields() and svc.loader.ready and not svc.loader.supports_image_inputs():
        raise ModelError("this model has no VAE encoder: image-to-image, inpainting and style transfer "
                         "are unavailable")


def request_body() -> tuple[dict[str, Any], dict[str, bytes]]:
    """JSON body, or multipart form fields plus uploaded files (by field name)."""
    if request.mimetype == "multipart/form-data":
        files = {name: upload.read() for name, upload in request.files.items()}
        return request.form.to_dict(), files
    return json_body(), {}


def _check_queue_room(svc: Services) -> None:
    queued = svc.jobs.counts()[JobStatus.QUEUED.value]
    if queued >= svc.settings.max_queue_size:
        average = svc.jobs.average_seconds() or 10.0
        retry = str(max(1, math.ceil(average)))
        raise QueueFull(f"the queue is full ({queued} jobs waiting); retry later",
                        {"queued": queued, "max_queue_size": svc.settings.max_queue_size}, {"Retry-After": retry})


def submit_mode(mode: str) -> tuple[Response, int]:
    """Queue a job of one mode; 202 with the job (200 when an idempotency key matched)."""
    svc = services()
    body, files = request_body()
    job, created = submit(svc, mode, body, files)
    return jsonify(job_view(svc, job)), 202 if created else 200


for _mode in REQUEST_MODELS:
    bp.add_url_rule(f"/generate/{_mode}", f"submit_{_mode.replace('-', '_')}", submit_mode,
                    methods=["POST"], defaults={"mode": _mode})


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    """One job with progress, preview, result or error."""
    svc = services()
    return jsonify(job_view(svc, svc.jobs.get(job_id)))


@bp.get("/jobs")
def list_jobs() -> Response:
    """Jobs newest first; ?status=, ?limit= (<= 200), ?before= (a job's created_at, for paging)."""
    svc = services()
    status = request.args.get("status") or None
    if status and status not in {s.value for s in JobStatus}:
        raise InvalidRequest(f"unknown status {status!r}", {"valid": [s.value for s in JobStatus]})
    limit = _int_arg("limit", 50, 1, MAX_LIST_LIMIT)
    before = _before_arg(svc)
    jobs = svc.jobs.list(status, limit, before)
    next_before = jobs[-1].id if len(jobs) == limit else None
    return jsonify({"jobs": [job_view(svc, j) for j in jobs], "next_before": next_before})


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}", {"field": name})
    return int(raw)


def _before_arg(svc: Services) -> float | None:
    """?before= takes a job id (the previous page's next_before) and pages past it."""
    raw = request.args.get("before")
    return svc.jobs.get(raw).seq if raw else None


@bp.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    """Cancel a queued job now, or a running one at its next step."""
    svc = services()
    svc.worker.request_cancel(job_id)
    job = svc.jobs.cancel(job_id)
    svc.notifier.notify()
    return jsonify({"success": True, **job_view(svc, job)})


@bp.delete("/jobs/<job_id>")
def delete_job(job_id: str) -> Response:
    """Remove a finished job and its images."""
    svc = services()
    job = svc.jobs.delete(job_id)
    remove_job_files(svc.store, svc.inputs, job)
    return jsonify({"deleted": job.id})


@bp.get("/queue/status")
def queue_status() -> Response:
    """Queue statistics in the seed's field names, plus the running job."""
    svc = services()
    counts = svc.jobs.counts()
    average = svc.jobs.average_seconds()
    current = svc.worker.current
    return jsonify({
        "queuedJobs": counts["queued"], "processingJobs": counts["running"], "completedJobs": counts["succeeded"],
        "failedJobs": counts["failed"], "canceledJobs": counts["canceled"],
        "averageProcessingTime": round(average * 1000) if average is not None else None,
        "maxQueueSize": svc.settings.max_queue_size,
        "currentJob": None if current is None else {
            "id": current.job_id, "step": current.step, "total": current.total,
            "percent": round(100 * current.fraction, 1), "eta_seconds": current.eta_seconds()},
    })


@bp.get("/jobs/<job_id>/events")
def job_events(job_id: str) -> Response:
    """Server-Sent Events: `progress` and `preview` as they happen, `done` at the end."""
    svc = services()
    svc.jobs.get(job_id)  # 404 before the stream starts
    stream = stream_with_context(_event_stream(svc, job_id))
    return Response(stream, mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _event_stream(svc: Services, job_id: str) -> Iterator[str]:
    sent: dict[str, Any] = {"progress": None, "preview": None}
    seen = svc.notifier.version()
    last_sent = time.monotonic()
    while True:
        view = job_view(svc, svc.jobs.get(job_id))
        events = _new_events(view, sent)
        if events:
            yield "".join(events)
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent > SSE_HEARTBEAT_SECONDS:
            yield ": keep-alive\n\n"  # keeps proxies from closing an idle stream
            last_sent = time.monotonic()
        if JobStatus(view["status"]).finished:
            return
        seen = svc.notifier.wait(seen, svc.settings.worker_poll_seconds)


def _new_events(view: dict[str, Any], sent: dict[str, Any]) -> list[str]:
    """The events a job view adds to what the stream already sent."""
    events = []
    if view["progress"] != sent["progress"]:
        sent["progress"] = view["progress"]
        events.append(_sse("progress", {**view["progress"], "status": view["status"], "position": view["position"],
                                        "eta_seconds": view["eta_seconds"]}))
    if view["preview_url"] and view["preview_url"] != sent["preview"]:
        sent["preview"] = view["preview_url"]
        events.append(_sse("preview", {"url": view["preview_url"], "step": view["progress"]["step"]}))
    if JobStatus(view["status"]).finished:
        events.append(_sse("done", view))
    return events


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"
