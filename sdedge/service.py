"""The generation service: the one layer every HTTP surface calls.

Submit (validate, idempotency, queue room, store inputs, add, notify), run-and-wait for the blocking
routes, cancel, interrupt, delete, and the job's public view with its file URLs. Route modules only
translate their protocol to and from these calls.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sdedge import input_files
from sdedge.config import Settings
from sdedge.engine.loader import EngineLoader
from sdedge.errors import GenerationTimeout, InvalidRequest, ModelError, ModelNotReady, QueueFull, detail, error_for
from sdedge.file_store import FileStore, remove_job_files
from sdedge.job_store import Job, JobStatus, JobStore
from sdedge.modes import mode_spec
from sdedge.notifier import Notifier
from sdedge.request_schemas import GenerateRequest
from sdedge.worker import Progress, Worker

MAX_LIST_LIMIT = 200


def iso(timestamp: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Submission:
    """A submitted job, and whether this call created it (False: an idempotency key matched)."""

    job: Job
    created: bool


class GenerationService:
    """Jobs from submission to their files, for every surface."""

    def __init__(self, settings: Settings, job_store: JobStore, images: FileStore, input_file_store: FileStore,
                 loader: EngineLoader, notifier: Notifier, worker: Worker) -> None:
        self.settings, self.job_store, self.images, self.input_file_store = settings, job_store, images, input_file_store
        self.loader, self.notifier, self.worker = loader, notifier, worker

    # -- submitting ------------------------------------------------------------------------------
    def submit(self, mode: str, body: dict[str, Any], files: dict[str, bytes] | None = None,
               idempotency_key: str | None = None) -> Submission:
        """Validate and queue a generation; the same idempotency key returns the first job."""
        spec = mode_spec(mode)
        self._check_accepting()
        parsed = spec.request_model.model_validate({**body, **(files or {})})
        key = idempotency_key or parsed.transaction_key
        if key and (existing := self.job_store.find_by_key(key)):
            return Submission(existing, False)
        self._check_image_support(parsed)
        self._check_queue_room()
        params, stored = input_files.prepare(parsed, self.settings, self.input_file_store)
        job, created = self.job_store.add(spec.mode.value, input_files.stored_request(body, parsed),
                                          {**params.to_dict(), input_files.PARAMS_KEY: stored},
                                          priority=parsed.priority, idempotency_key=key)
        if not created:  # lost an idempotency race: the other submission's inputs are the job's
            self.input_file_store.delete(list(stored.values()))
        self.notifier.notify()
        return Submission(job, created)

    def run(self, mode: str, body: dict[str, Any], files: dict[str, bytes] | None = None,
            idempotency_key: str | None = None, *, timeout: float | None = None, allow_unfinished: bool = False) -> Job:
        """Submit and wait until the job ended (blocking routes); still running then: a 504, or the job as it is."""
        self.loader.engine()  # 503 with the reason now, rather than a job that waits for a model
        job = self.submit(mode, body, files, idempotency_key).job
        job = self.wait(job.id, self.settings.job_timeout if timeout is None else timeout)
        if not job.status.finished and not allow_unfinished:
            raise GenerationTimeout(f"job {job.id} did not finish within JOB_TIMEOUT; see /jobs/{job.id}",
                                    detail(None, "still running", "timeout", job_id=job.id))
        return job

    def wait(self, job_id: str, timeout: float) -> Job:
        """The job once finished, or as it is when timeout runs out."""
        deadline = time.monotonic() + timeout
        seen = self.notifier.version()
        job = self.job_store.get(job_id)
        while not job.status.finished and (left := deadline - time.monotonic()) > 0:
            seen = self.notifier.wait(seen, min(left, self.settings.worker_poll_seconds))
            job = self.job_store.get(job_id)
        return job

    @staticmethod
    def raise_if_failed(job: Job) -> None:
        """Raise the error a failed job stored (canceled and succeeded jobs pass)."""
        if job.status is JobStatus.FAILED:
            raise error_for(job.error or {})

    def _check_accepting(self) -> None:
        if self.worker.stopping:
            raise ModelError("the server is shutting down; retry shortly")
        if self.loader.state.dead_end:  # nothing would ever run: say why instead of queueing
            raise ModelNotReady(self.loader.reason or "the model is not available",
                                detail(None, self.loader.reason or "the model is not available", "state",
                                       state=self.loader.state.value))

    def _check_image_support(self, parsed: GenerateRequest) -> None:
        if parsed.image_fields() and self.loader.ready and not self.loader.supports_image_inputs():
            raise ModelError("this model has no VAE encoder: image-to-image, inpainting and style transfer "
                             "are unavailable")

    def _check_queue_room(self) -> None:
        queued = self.job_store.counts()[JobStatus.QUEUED.value]
        if queued >= self.settings.max_queue_size:
            average = self.job_store.average_seconds() or 10.0
            message = f"the queue is full ({queued} jobs waiting); retry later"
            raise QueueFull(message, detail(None, message, "queue_full", queued=queued,
                                            max_queue_size=self.settings.max_queue_size),
                            {"Retry-After": str(max(1, math.ceil(average)))})

    # -- controlling -----------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job now, or a running one at its next step."""
        self.worker.request_cancel(job_id)
        job = self.job_store.cancel(job_id)
        self.notifier.notify()
        return job

    def interrupt(self) -> Job | None:
        """Stop the job this process is running (A1111's interrupt), if any."""
        live = self.worker.current
        return self.cancel(live.job_id) if live is not None else None

    def delete(self, job_id: str) -> Job:
        """Remove a finished job and its files."""
        job = self.job_store.delete(job_id)
        remove_job_files(self.images, self.input_file_store, job)
        return job

    # -- reading ---------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """One job, or NotFound."""
        return self.job_store.get(job_id)

    def list_jobs(self, status: str | None, limit: int, before: str | None) -> tuple[list[Job], str | None]:
        """Jobs newest first, and the id to page on from (None on the last page)."""
        if status and status not in {s.value for s in JobStatus}:
            message = f"unknown status {status!r}"
            raise InvalidRequest(message, detail("status", message, "enum", valid=[s.value for s in JobStatus]))
        before_seq = self.job_store.get(before).seq if before else None
        jobs = self.job_store.list(status, limit, before_seq)
        return jobs, jobs[-1].id if len(jobs) == limit else None

    def live(self, job: Job | None = None) -> Progress | None:
        """The running job's live progress in this process (for job, when given and it is that job)."""
        current = self.worker.current
        if current is None or (job is not None and current.job_id != job.id):
            return None
        return current

    def file_url(self, filename: str) -> str:
        """Link to a generated file; absolute when BASE_URL is set."""
        return f"{self.settings.base_url or ''}/generated/{filename}"

    def file_path(self, filename: str) -> Path | None:
        """A generated file's path, when it is one of ours and exists."""
        return self.images.path(filename)

    def read_file(self, filename: str) -> bytes | None:
        """A generated file's bytes, or None when it is gone (previews are replaced all the time)."""
        path = self.images.path(filename)
        try:
            return path.read_bytes() if path else None
        except FileNotFoundError:
            return None

    def result_files(self, job: Job) -> list[str]:
        """The generated image files of a finished job."""
        return list((job.result or {}).get("files", []))

    # -- views -----------------------------------------------------------------------------------
    def progress(self, job: Job) -> dict[str, Any]:
        """Progress of a job: live numbers when this process runs it, stored ones otherwise."""
        step, total = job.progress_step, job.progress_total
        live = self.live(job)
        if live is not None:
            step, total = live.step, live.total
        if job.status is JobStatus.SUCCEEDED:
            step = total
        percent = round(100 * step / total, 1) if total else 0.0
        return {"step": step, "total": total, "percent": percent}

    def view(self, job: Job) -> dict[str, Any]:
        """A job as clients see it."""
        live = self.live(job)
        record = job.to_dict()
        return {
            "id": job.id, "type": job.type, "status": job.status.value, "priority": job.priority,
            "position": self.job_store.position(job) if job.status is JobStatus.QUEUED else None,
            "progress": self.progress(job),
            "eta_seconds": live.eta_seconds() if live else None,
            "preview_url": self._preview_url(job, live),
            "result": self._result_view(job.result),
            "error": job.error, "request": job.request, "attempts": job.attempts,
            **{key: iso(record[key]) for key in ("created_at", "started_at", "finished_at")},
        }

    def _preview_url(self, job: Job, live: Progress | None) -> str | None:
        name = live.preview if live else (job.preview if job.status is JobStatus.RUNNING else None)
        return self.file_url(name) + f"?v={self.progress(job)['step']}" if name else None

    def _result_view(self, result: dict[str, Any] | None) -> dict[str, Any] | None:
        if result is None:
            return None
        return {"images": [self.file_url(f) for f in result["files"]],
                **{k: v for k, v in result.items() if k != "files"}}

    def queue_status(self) -> dict[str, Any]:
        """Queue statistics in the seed's field names, plus the running job."""
        counts = self.job_store.counts()
        average = self.job_store.average_seconds()
        current = self.worker.current
        return {
            "queuedJobs": counts["queued"], "processingJobs": counts["running"], "completedJobs": counts["succeeded"],
            "failedJobs": counts["failed"], "canceledJobs": counts["canceled"],
            "averageProcessingTime": round(average * 1000) if average is not None else None,
            "maxQueueSize": self.settings.max_queue_size,
            "currentJob": None if current is None else {
                "id": current.job_id, "step": current.step, "total": current.total,
                "percent": round(100 * current.fraction, 1), "eta_seconds": current.eta_seconds()},
        }
