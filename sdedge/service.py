"""The generation service: the one layer every HTTP surface calls.

Submit (validate, idempotency, queue room, store inputs, add, notify), run-and-wait for the blocking
routes, cancel, interrupt, delete, and the job's public view with its file URLs. Route modules only
translate their protocol to and from these calls.

Every call that reads or changes jobs takes the caller (a `Principal`): ownership is checked here and
nowhere else. Another user's job or file is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sdedge import generation_extras, input_files, model_checks, step_images
from sdedge.config import Settings
from sdedge.engine.loader import EngineLoader
from sdedge.errors import (
    Conflict, DatabaseUnavailable, GenerationTimeout, ModelError, ModelNotReady, NotFound, QueueFull,
    detail, error_for,
)
from sdedge.fair_use import check_queue_share
from sdedge.file_store import FileStore, remove_job_files
from sdedge.job_events import JobEvents, event_for
from sdedge.job_store import Job, JobStatus, JobStore
from sdedge.job_view import ApiStatus, Files, ImageForm, LiveState, api_counts, iso, percent, render
from sdedge.modes import mode_spec
from sdedge.nodes import NodeRegistry
from sdedge.notifier import Notifier
from sdedge.ownership import check_visible, job_id_of_file, mask_nodes, owned_key
from sdedge.placement import Placement, place
from sdedge.principal import SYSTEM, Principal
from sdedge.request_schemas import GenerateRequest
from sdedge.job_progress import Progress, phase_of
from sdedge.worker_pool import WorkerPool

MAX_LIST_LIMIT = 200
NODE_NAMES_SECONDS = 5.0
_GRACE_SECONDS = 30.0  # past JOB_TIMEOUT the worker fails the job itself; this only covers its last step


def _fingerprint(mode: str, body: dict[str, Any], files: dict[str, bytes] | None) -> str:
    """The same call, byte for byte (a client's retry): its mode, body and uploads hashed together."""
    digest = hashlib.sha256(mode.encode())
    digest.update(json.dumps(body, sort_keys=True, default=str).encode())
    for name, data in sorted((files or {}).items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()


def _label(worker: str | None) -> str | None:
    """The worker part of a claim's name (node:pid:label), e.g. GPU.0 or remote-big-box."""
    parts = (worker or "").split(":", 2)
    return parts[2] if len(parts) == 3 else None


@dataclass
class Submission:
    """A submitted job, and whether this call created it (False: an idempotency key matched)."""

    job: Job
    created: bool


class GenerationService:
    """Jobs from submission to their files, for every surface."""

    def __init__(self, settings: Settings, job_store: JobStore, images: FileStore, input_file_store: FileStore,
                 loader: EngineLoader, notifier: Notifier, worker: WorkerPool, nodes: NodeRegistry,
                 events: JobEvents | None = None) -> None:
        self.settings, self.job_store, self.images, self.input_file_store = settings, job_store, images, input_file_store
        self.events = events or worker.events
        self.loader, self.notifier, self.worker, self.nodes = loader, notifier, worker, nodes
        self._node_names: tuple[float, dict[str, str]] = (0.0, {})
        self._in_flight: dict[str, str] = {}  # request fingerprint -> job id, for blocking calls still waiting
        self._in_flight_lock = threading.Lock()

    # -- submitting ------------------------------------------------------------------------------
    def submit(self, mode: str, body: dict[str, Any], files: dict[str, bytes] | None = None,
               idempotency_key: str | None = None, *, caller: Principal) -> Submission:
        """Validate and queue a generation owned by caller; the same idempotency key returns the first job."""
        spec = mode_spec(mode)
        self._check_accepting(local=not self._names_remote(body))
        parsed = spec.request_model.model_validate({**body, **(files or {})})
        key = owned_key(idempotency_key or parsed.transaction_key, caller)
        if key and (existing := self.job_store.find_by_key(key)):
            return Submission(existing, False)
        placement = self.placement(spec.mode.value, parsed)
        # a local model: the library's checks (a remote engine checks its own)
        entry = None if placement.remote else model_checks.checked_entry(self.loader, spec.mode.value, parsed)
        self._check_queue_room()
        check_queue_share(self.job_store, self.settings, caller)
        defaults = self.loader.library.settings_for(entry) if entry else self.settings  # the model's defaults
        extras = generation_extras.for_job(parsed, defaults, entry)  # against the job's model, not the default
        params, stored = input_files.prepare(parsed, defaults, self.input_file_store, extras)
        params, adjusted = model_checks.fit_params(entry, params)
        job, created = self.job_store.add(spec.mode.value, input_files.stored_request(body, parsed),
                                          {**params.to_dict(), input_files.PARAMS_KEY: stored, "adjusted": adjusted,
                                           **({step_images.PARAMS_KEY: parsed.step_images} if parsed.step_images else {})},
                                          priority=parsed.priority, idempotency_key=key, owner=caller.owner,
                                          model=entry.id if entry else placement.model, device=placement.device)
        if not created:  # lost an idempotency race: the other submission's inputs are the job's
            self.input_file_store.delete(list(stored.values()))
        else:
            self._emit("submitted", job)
        self.notifier.notify()
        return Submission(job, created)

    def run(self, mode: str, body: dict[str, Any], files: dict[str, bytes] | None = None,
            idempotency_key: str | None = None, *, caller: Principal, patience: float | None = None,
            keep_on_give_up: bool = False) -> Job:
        """Submit and wait for the job (blocking routes), then return it as it ended.

        The wait is bounded twice: QUEUE_WAIT_TIMEOUT while the job is queued, then JOB_TIMEOUT while it
        runs (which the worker enforces too). A caller that gives up cancels its job, so nobody's work is
        left running for nobody; with keep_on_give_up (POST /image, whose client can poll) the job is
        returned unfinished instead. patience is the client's own limit (`Prefer: wait=N`): past it the
        job is returned as it is, still queued or running. The same call repeated while its job is
        unfinished (a client's retry) waits for that job instead of queueing a second one.
        """
        if not self._names_remote(body):
            self.loader.check_ready()  # 503 with the reason now, rather than a job that waits for a model
        # A retry joins the same user's job only: the fingerprint is scoped like an idempotency key.
        fingerprint = None if idempotency_key else owned_key(_fingerprint(mode, body, files), caller)
        with self._in_flight_lock:  # two copies of one call arriving together still make one job
            job = self._in_flight_job(fingerprint) or self.submit(mode, body, files, idempotency_key, caller=caller).job
            if fingerprint:
                self._in_flight[fingerprint] = job.id
        try:
            until = None if patience is None else time.monotonic() + patience
            return self._wait_bounded(job, until, keep_on_give_up)
        finally:
            if fingerprint:
                self._in_flight.pop(fingerprint, None)

    def _wait_bounded(self, job: Job, until: float | None, keep: bool) -> Job:
        def capped(seconds: float) -> float:
            return seconds if until is None else min(seconds, until - time.monotonic())

        queued_until = job.created_at + self.settings.queue_wait_timeout
        job = self.wait(job.id, max(0.0, capped(queued_until - time.time())), until_started=True)
        if job.status is JobStatus.QUEUED:
            if keep or (until is not None and time.monotonic() >= until):
                return job
            self._give_up(job, f"job {job.id} waited QUEUE_WAIT_TIMEOUT={self.settings.queue_wait_timeout:g} s "
                               "in the queue without starting; it was canceled")
        started = job.started_at or time.time()
        job = self.wait(job.id, max(0.0, capped(started + self.settings.job_timeout + _GRACE_SECONDS - time.time())))
        if not job.status.finished and not keep and (until is None or time.monotonic() < until):
            self._give_up(job, f"job {job.id} did not finish within JOB_TIMEOUT={self.settings.job_timeout:g} s; "
                               "it was canceled")
        return job

    def _give_up(self, job: Job, message: str) -> None:
        with contextlib.suppress(Conflict):  # it may have ended just now
            self.cancel(job.id, SYSTEM)  # the caller's own job, given up on by the service
        raise GenerationTimeout(message, detail(None, message, "timeout", job_id=job.id))

    def _in_flight_job(self, fingerprint: str | None) -> Job | None:
        job_id = self._in_flight.get(fingerprint) if fingerprint else None
        if job_id is None:
            return None
        job = self.job_store.get(job_id)
        return None if job.status.finished else job

    def wait(self, job_id: str, timeout: float, *, until_started: bool = False) -> Job:
        """The job once finished (or, with until_started, once it left the queue), or as it is at timeout."""
        deadline = time.monotonic() + timeout
        seen = self.notifier.version()
        job = self.job_store.get(job_id)
        while (left := deadline - time.monotonic()) > 0:
            if job.status.finished or (until_started and job.status is not JobStatus.QUEUED):
                break
            seen = self.notifier.wait(seen, min(left, self.settings.worker_poll_seconds))
            job = self.job_store.get(job_id)
        return job

    @staticmethod
    def raise_if_failed(job: Job) -> None:
        """Raise the error a failed job stored (canceled and succeeded jobs pass)."""
        if job.status is JobStatus.FAILED:
            raise error_for(job.error or {})

    def placement(self, mode: str, parsed: GenerateRequest) -> Placement:
        """Which workers may run this request (its model and device), checked against this node and its fleet."""
        fleet = []
        if parsed.model is not None or parsed.device is not None:
            within = 3 * self.settings.lease_seconds
            fleet = [w for info in self.nodes.live(within_seconds=within) for w in info.workers]
        return place(mode, parsed.model, parsed.device, self.worker, fleet)

    def _names_remote(self, body: dict[str, Any]) -> bool:
        """True when the request names a remote model of this node (the local engine's state does not matter)."""
        model = body.get("model")
        return isinstance(model, str) and self.worker.remote(model) is not None

    def _check_accepting(self, local: bool = True) -> None:
        if self.worker.stopping:
            raise ModelError("the server is shutting down; retry shortly")
        if local and self.loader.state.dead_end:  # nothing would ever run: say why instead of queueing
            raise ModelNotReady(self.loader.reason or "the model is not available",
                                detail(None, self.loader.reason or "the model is not available", "state",
                                       state=self.loader.state.value))

    def _check_queue_room(self) -> None:
        queued = self.job_store.counts()[JobStatus.QUEUED.value]
        if queued >= self.settings.max_queue_size:
            average = self.job_store.average_seconds() or 10.0
            message = f"the queue is full ({queued} jobs waiting); retry later"
            raise QueueFull(message, detail(None, message, "queue_full", queued=queued,
                                            max_queue_size=self.settings.max_queue_size),
                            {"Retry-After": str(max(1, math.ceil(average)))})

    # -- controlling -----------------------------------------------------------------------------
    def cancel(self, job_id: str, caller: Principal, *, keep_partial: bool = False) -> Job:
        """Cancel a queued job now, or a running one at its next step (keep_partial: with what it made so far,
        when this process runs it)."""
        self.get(job_id, caller)
        self.worker.request_cancel(job_id, keep_partial)
        job = self.job_store.cancel(job_id)
        if job.status is JobStatus.CANCELED:  # it was queued; a running one is told by the worker when it stops
            self._emit("canceled", job)
        self.notifier.notify()
        return job

    def _emit(self, kind: Literal["submitted", "canceled"], job: Job) -> None:
        self.events.emit(event_for(kind, job, model=self.loader.model_name(), node=self.nodes.node))

    def interrupt(self, caller: Principal) -> Job | None:
        """Stop the job this process is running (A1111's interrupt), if it is the caller's."""
        live = self.live(caller=caller)
        if live is None:
            return None
        with contextlib.suppress(Conflict):  # it ended on its own meanwhile
            return self.cancel(live.job_id, caller, keep_partial=True)  # A1111 hands back the partial image
        return None

    def delete(self, job_id: str, caller: Principal) -> Job:
        """Remove a finished job and its files."""
        self.get(job_id, caller)
        job = self.job_store.delete(job_id)
        remove_job_files(self.images, self.input_file_store, job)
        return job

    # -- reading ---------------------------------------------------------------------------------
    def database_problem(self) -> str | None:
        """Why the job database cannot be used right now (the worker's last failure, or a fresh ping), or None."""
        if self.worker.database_error:
            return self.worker.database_error
        try:
            self.job_store.ping()
        except DatabaseUnavailable as exc:
            return exc.message
        return None

    def get(self, job_id: str, caller: Principal) -> Job:
        """One job the caller may see, or NotFound."""
        return check_visible(self.job_store.get(job_id), caller)

    def get_by_key(self, key: str, caller: Principal) -> Job:
        """The caller's job submitted with this idempotency (transaction) key, or NotFound."""
        job = self.job_store.find_by_key(owned_key(key, caller) or key)
        if job is None:
            raise NotFound(f"no job with the key {key!r}")
        return check_visible(job, caller)

    def list_jobs(self, status: ApiStatus | None, limit: int, before: str | None,
                  caller: Principal) -> tuple[list[Job], str | None]:
        """The caller's jobs (admins: all) newest first, and the id to page on from (None on the last page)."""
        stored = status.stored.value if status else None
        before_seq = self.get(before, caller).seq if before else None
        jobs = self.job_store.list_jobs(stored, limit, before_seq, owner=caller.owner, any_owner=caller.sees_all)
        return jobs, jobs[-1].id if len(jobs) == limit else None

    def live(self, job: Job | None = None, caller: Principal | None = None) -> Progress | None:
        """Live progress of a job this process runs (of job, when given; when caller is given, only a job
        of the caller's; else the first running)."""
        found = [self.worker.progress_of(job.id)] if job is not None else self.worker.running()
        for current in found:
            if current is None:
                continue
            if caller is None or caller.sees_all:
                return current
            try:
                self.get(current.job_id, caller)
            except NotFound:
                continue
            return current
        return None

    def file_url(self, filename: str) -> str:
        """Link to a generated file; absolute when BASE_URL is set."""
        return f"{self.settings.base_url or ''}/generated/{filename}"

    def job_url(self, job_id: str) -> str:
        """Where a job is polled (GET /jobs/<id>); absolute when BASE_URL is set."""
        return f"{self.settings.base_url or ''}/jobs/{job_id}"

    def file_path(self, filename: str, caller: Principal) -> Path | None:
        """A generated file's path, when it is one of ours, exists, and belongs to a job the caller may see."""
        if not caller.sees_all:
            try:
                self.get(job_id_of_file(filename) or "", caller)
            except NotFound:
                return None
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
        return {"step": step, "total": total, "percent": percent(step, total)}

    def view(self, job: Job, images: ImageForm = ImageForm.DATA) -> dict[str, Any]:
        """A job as clients see it (sdedge.job_view): images as data URLs, or with URLS only their links."""
        live = self.live(job)
        progress = self.progress(job)
        state = LiveState(position=self.job_store.position(job) if job.status is JobStatus.QUEUED else None,
                          step=progress["step"], total=progress["total"],
                          eta_seconds=live.eta_seconds() if live else None,
                          preview_url=self._preview_url(job, live), node=self._node(job.node))
        view = render(job, state, Files(self.file_url, self.read_file, self.loader.model_name()), images)
        # which workers may run it, and the model library's fields: what it does now, what its family dropped
        return {**view, "model": job.model, "device": job.device, "phase": phase_of(job.status is JobStatus.RUNNING, live),
                "adjusted": job.params.get("adjusted") or []}

    def _node(self, node: str | None) -> dict[str, str] | None:
        """A node's id and name, names cached for a few seconds (every job view names one)."""
        if node is None:
            return None
        fetched, names = self._node_names
        if node not in names and time.monotonic() - fetched > NODE_NAMES_SECONDS:
            names = {info.id: info.name for info in self.nodes.live(within_seconds=1e9)}
            self._node_names = (time.monotonic(), names)
        return {"id": node, "name": names.get(node, node)}

    def fleet(self, caller: Principal) -> list[dict[str, Any]]:
        """The nodes seen within the last three leases, this one first (other users' job ids left out)."""
        nodes = [info.to_dict() for info in self.nodes.live(within_seconds=3 * self.settings.lease_seconds)]
        visible = set() if caller.sees_all else {j.id for j in self.job_store.running() if caller.can_see(j.owner)}
        return mask_nodes(nodes, visible, caller)

    def _preview_url(self, job: Job, live: Progress | None) -> str | None:
        name = live.preview if live else (job.preview if job.status is JobStatus.RUNNING else None)
        return self.file_url(name) + f"?v={self.progress(job)['step']}" if name else None

    def queue_status(self, caller: Principal) -> dict[str, Any]:
        """Queue statistics in the seed's field names (every job counts), plus the running job (its id only
        when it is the caller's)."""
        counts = api_counts(self.job_store.counts())
        average = self.job_store.average_seconds()
        current = self.live(caller=caller) or next(iter(self.worker.running()), None)
        mine = current is not None and self.live(caller=caller) is current
        return {
            # a job whose images are being written is done with the device: not "processing"
            "queuedJobs": counts["queued"], "processingJobs": max(0, counts["processing"] - len(self.worker.saving)),
            "completedJobs": counts["completed"],
            "failedJobs": counts["failed"], "canceledJobs": counts["canceled"],
            "averageProcessingTime": round(average * 1000) if average is not None else 0,
            "maxQueueSize": self.settings.max_queue_size,
            "currentJob": None if current is None else {
                "id": current.job_id if mine else None, "step": current.step, "total": current.total,
                "percent": round(100 * current.fraction, 1), "eta_seconds": current.eta_seconds()},
            "runningJobs": [{"id": job.id if caller.can_see(job.owner) else None, "node": self._node(job.node),
                             "worker": _label(job.worker), "device": job.device, "model": job.model,
                             **self.progress(job)} for job in self.job_store.running()],
            "workers": self.workers(caller),
            "nodes": self.fleet(caller),
        }

    def workers(self, caller: Principal) -> list[dict[str, Any]]:
        """This node's workers (device or remote model, state, current job: its id only when the caller's)."""
        visible = set() if caller.sees_all else {j.id for j in self.job_store.running() if caller.can_see(j.owner)}
        return mask_nodes([{"workers": self.worker.describe()}], visible, caller)[0]["workers"]
