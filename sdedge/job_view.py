"""A job as clients see it: seed 002's job contract, with sdedge's own fields beside it.

The seed's fields keep its names, types and values: `status` is one of `queued`, `processing`,
`completed`, `failed` (and `canceled`); `progress` is a number 0..100; `createdAt`, `startedAt`,
`completedAt` are ISO 8601 strings; `result.images` are data URLs (`result.urls` the same images' file
URLs); `result.timeTaken` is milliseconds; `error` is a string. sdedge's fields are additive:
`progressDetail` (step, total, percent), `errorDetail` (code, message), `position`, `eta_seconds`,
`preview_url`, `node`, `attempts` and the snake_case timestamps.

The database keeps its own status names (`running`, `succeeded`); `JobStatus.api` names them for clients,
and every surface that shows a status to a client goes through it (this module's `ApiStatus` parses them).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from sdedge.job_store import Job, JobStatus


class ApiStatus(str, Enum):
    """A job's status in the API (seed 002's names, plus canceled)."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def stored(self) -> JobStatus:
        """The database's name for this status."""
        return _STORED[self]

    @property
    def finished(self) -> bool:
        """True for the statuses a job never leaves."""
        return self.stored.finished


_STORED = {ApiStatus(stored.api): stored for stored in JobStatus}


def api_status(status: JobStatus) -> ApiStatus:
    """The API's name for a stored status."""
    return ApiStatus(status.api)


def api_counts(counts: dict[str, int]) -> dict[str, int]:
    """Per-status job counts (the store's, by stored name) under the API's names."""
    return {stored.api: counts.get(stored.value, 0) for stored in JobStatus}


class ImageForm(str, Enum):
    """What `result.images` holds: data URLs (the seed's) or, for light polling, the file URLs."""

    DATA = "data"
    URLS = "urls"


def iso(timestamp: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def data_url(png: bytes) -> str:
    """A PNG as a `data:image/png;base64,...` URL."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class LiveState:
    """What the service knows about a job beyond its row: queue place, live progress, preview, node."""

    position: int | None
    step: int
    total: int
    eta_seconds: float | None
    preview_url: str | None
    node: dict[str, str] | None


@dataclass(frozen=True)
class Files:
    """How a view reaches a job's images: their URLs, and their bytes when data URLs are wanted."""

    url: Callable[[str], str]
    read: Callable[[str], bytes | None]
    model: str  # the server's model: for results of jobs that named none


def percent(step: int, total: int) -> float:
    """Steps done as a percentage with one decimal."""
    return round(100 * step / total, 1) if total else 0.0


def render(job: Job, live: LiveState, files: Files, images: ImageForm = ImageForm.DATA) -> dict[str, Any]:
    """The job's public view (see the module docstring for the contract)."""
    status = api_status(job.status)
    step = live.total if status is ApiStatus.COMPLETED else live.step
    exact = percent(step, live.total)
    return {
        "id": job.id, "type": job.type, "status": status.value, "priority": job.priority,
        "progress": 100 if status is ApiStatus.COMPLETED else min(99, int(exact)),
        "progressDetail": {"step": step, "total": live.total, "percent": exact},
        "position": live.position, "eta_seconds": live.eta_seconds, "preview_url": live.preview_url,
        "result": _result(job, files, images),
        "error": error_text(job.error), "errorDetail": job.error,
        "request": job.request, "attempts": job.attempts, "node": live.node,
        "createdAt": iso(job.created_at), "startedAt": iso(job.started_at),
        "completedAt": iso(job.finished_at) if status.finished else None,
        "created_at": iso(job.created_at), "started_at": iso(job.started_at), "finished_at": iso(job.finished_at),
    }


def error_text(error: dict[str, Any] | None) -> str | None:
    """A stored error as the seed's string: its message (or its code when it has none)."""
    if not error:
        return None
    return str(error.get("message") or error.get("code") or "failed")


def _result(job: Job, files: Files, images: ImageForm) -> dict[str, Any] | None:
    result = job.result
    if result is None:
        return None
    names = list(result.get("files", []))
    urls = [files.url(name) for name in names]
    parameters = dict(result.get("parameters", {}))
    # the seed's names for what sdedge calls guidance_scale, and the model the image came from
    parameters.setdefault("guidanceScale", parameters.get("guidance_scale"))
    parameters.setdefault("model", result.get("model") or job.model or files.model)
    taken = (job.finished_at - job.started_at) * 1000 if job.finished_at and job.started_at else 0.0
    steps = {"step_images": [files.url(name) for name in result["step_files"]]} if "step_files" in result else {}
    return {
        **{k: v for k, v in result.items() if k not in ("files", "step_files")},
        "images": urls if images is ImageForm.URLS else _data_urls(names, files),
        "urls": urls, "parameters": parameters, "timeTaken": round(taken), **steps,
    }


def _data_urls(names: list[str], files: Files) -> list[str]:
    """Each image as a data URL; a file removed from the disk meanwhile is left out."""
    found = (files.read(name) for name in names)
    return [data_url(png) for png in found if png is not None]
