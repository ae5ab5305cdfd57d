"""A worker: one thread per device (or remote engine) taking jobs from the store, one at a time.

On a CPU, running two generations at once only splits the same cores between them, so a device
gets exactly one worker. Each worker claims only the jobs it can run (its models, its device class);
its engine source is a local device's loader or a remote engine. The step callback records progress,
writes previews, and stops the run on cancel, timeout or shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from sdedge import input_files, step_images
from sdedge.backoff import Backoff
from sdedge.config import Settings
from sdedge.engine.params import GenerationOutput, GenerationParams, PartialOutput, StepEvent
from sdedge.engine.previews import preview_image
from sdedge.engine.tiny_previews import LivePreviews
from sdedge.errors import GenerationCanceled, SdedgeError
from sdedge.foreign_errors import describe_outage, is_database_outage
from sdedge.file_store import FileStore
from sdedge.infotext import infotext
from sdedge.job_events import JobEvents, Kind, event_for, stage_seconds
from sdedge.job_store import Job, JobStatus, JobStore, worker_name
from sdedge.leases import LeaseKeeper
from sdedge.notifier import Notifier
from sdedge.engine.loader import EngineLoader
from sdedge.job_progress import Progress, engine_for_job
from sdedge.partial_results import keep_partial
from sdedge.worker_parts import ClaimScope, EngineSource, NodeDuties

log = logging.getLogger(__name__)


class Worker:
    """Claims the jobs its scope allows and runs them on its source's engine."""

    def __init__(self, settings: Settings, job_store: JobStore, images: FileStore, input_files: FileStore,
                 source: EngineSource, notifier: Notifier, node: str, *, label: str,
                 scope: Callable[[], ClaimScope], duties: NodeDuties, events: JobEvents | None = None) -> None:
        self.settings, self.job_store, self.source = settings, job_store, source
        self.events = events or JobEvents()
        self.images, self.input_files = images, input_files
        self.notifier, self.node, self.label = notifier, node, label
        self.name = f"{worker_name(node)}:{label}"  # node:pid:device, so recovery by node still matches
        self.scope, self.duties = scope, duties
        self._lease: LeaseKeeper | None = None
        self.current: Progress | None = None
        self._cancel_current = threading.Event()  # a cancel made in this process, for the running job
        self._keep_partial = False  # that cancel wants the partial image kept (A1111's interrupt)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sdedge-saver-{label}")
        self.saving: set[str] = set()  # jobs whose images the saver thread is writing
        self.database_error: str | None = None  # why the job database cannot be reached, while it cannot

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Take jobs in a daemon thread; the node's duties first recover what a crash left running."""
        self._thread = threading.Thread(target=self._loop, name=f"sdedge-worker-{self.label}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; a running job stops at its next step and goes back to the queue."""
        self.signal_stop()
        if self._thread:
            self._thread.join(timeout)
        self._saver.shutdown(wait=True)  # images already generated are written, not lost

    def signal_stop(self) -> None:
        """Ask the loop to end (stop() also waits for it)."""
        self._stopping.set()
        self.notifier.notify()

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stopping.is_set()

    def request_cancel(self, job_id: str, keep_partial: bool = False) -> None:
        """Fast path for a cancel made in this process, checked at every step (the store's flag is the slow one).

        keep_partial: the stopped job keeps what it made, its last step decoded (A1111's interrupt)."""
        current = self.current
        if current is not None and current.job_id == job_id:
            self._keep_partial = self._keep_partial or keep_partial
            self._cancel_current.set()

    def cancel_requested(self, job_id: str) -> bool:
        """True when the running job job_id was canceled in this process."""
        current = self.current
        return current is not None and current.job_id == job_id and self._cancel_current.is_set()

    def _loop(self) -> None:
        seen = self.notifier.version()
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                self.duties.run()
                job = self._claim() if self.source.ready else None
            except Exception as exc:  # noqa: BLE001 - the worker thread must outlive any outage
                self._database_down(exc, backoff)
                continue
            self._database_up(backoff)
            if job is None:
                seen = self.notifier.wait(seen, self.settings.worker_poll_seconds)
                continue
            self._run(job)

    def _claim(self) -> Job | None:
        scope, s = self.scope(), self.settings
        loader = _local_loader(self.source)  # a local device's loader prefers the model it has loaded
        return self.job_store.claim_next(self.name, node=self.node, lease_seconds=s.lease_seconds,
                                         models=scope.models, devices=scope.devices,
                                         prefer_model=loader.pool.most_recent_id() if loader else None,
                                         affinity=(s.model_affinity_max_skips, s.model_affinity_max_wait))

    def describe(self) -> dict[str, Any]:
        """What this worker is and does, for the nodes table, /health and /queue/status."""
        current = self.current
        return {"worker": self.name, "label": self.label, **self.source.describe(),
                "model": self.source.model_name(), "job": current.job_id if current else None}

    def ran_on(self) -> dict[str, Any]:
        """Which worker ran a job, for its result: the label, the actual device or the remote model."""
        described = self.source.describe()
        device, remote = described.get("device") or {}, described.get("remote") or {}
        return {"label": self.label, "device": device.get("actual"), "remote": remote.get("id")}

    @property
    def lost_current(self) -> bool:
        """True when the running job's claim lapsed and another worker owns it now."""
        return self._lease is not None and self._lease.lost.is_set()

    def _database_down(self, exc: Exception, backoff: Backoff) -> None:
        if not is_database_outage(exc):
            log.exception("the worker loop failed; retrying")
        elif self.database_error is None:
            log.warning("%s", describe_outage(exc))
        self.database_error = describe_outage(exc) if is_database_outage(exc) else f"worker error: {exc}"
        self.notifier.notify()
        self._stopping.wait(backoff.next())

    def _database_up(self, backoff: Backoff) -> None:
        if self.database_error is not None:
            log.info("the job database is reachable again")
            self.database_error = None
            self.notifier.notify()
        backoff.reset()

    def _persist(self, write: Callable[[], bool], what: str) -> None:
        """Run a job-store write that must not be lost, retrying through a database outage.

        The write answers False when this attempt no longer owns the job (another worker took it over
        after this one's lease lapsed): then nothing was written, by design.
        """
        backoff = Backoff()
        while True:
            try:
                if not write():
                    log.warning("%s was not recorded: this worker no longer owns the job", what)
                self._database_up(backoff)
                return
            except Exception as exc:  # noqa: BLE001 - retried until it lands (or the server stops)
                if not is_database_outage(exc) or self._stopping.is_set():
                    log.exception("could not record %s", what)
                    return
                self._database_down(exc, backoff)

    # -- running one job -----------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        params = GenerationParams.from_dict(job.params)
        self.current = Progress(job.id, params.steps * params.num_images, model=job.model)
        self.notifier.notify()
        tracker = _StepTracker(self, job, params)
        self._lease = LeaseKeeper(self.job_store, job.id, job.attempts, self.settings.lease_seconds)
        self._safely(self.duties.beat_now)
        self.emit("started", job)
        try:
            with self._lease:
                inputs = input_files.load(job.params, self.input_files)
                loader = _local_loader(self.source)
                engine = (engine_for_job(loader, self.current, self.notifier.notify, job.model) if loader
                          else self.source.engine())
                tracker.live = LivePreviews.for_job(engine, self.settings.preview_decoder, self.settings.preview_budget,
                                                    params.width, params.height, tracker.save_preview)
                output = engine.generate(params, tracker.on_step, inputs)
            total = self.current.total if self.current else None
            # PNG encoding overlaps the next job: the device never waits for zlib.
            self.saving.add(job.id)
            self._saver.submit(self._save_results, job, params, output, total, tracker.step_files)
        except GenerationCanceled as exc:
            self._stopped(job, tracker, params, exc.partial)
        except SdedgeError as exc:
            self._fail(job, exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - a job failure must never kill the worker
            log.exception("job %s failed", job.id)
            self._fail(job, "internal_error", f"internal error ({type(exc).__name__}); see the server log")
        finally:
            if tracker.live is not None:
                tracker.live.close()  # before the next job: one decode at a time per engine
            self._cleanup(job)

    def _save_results(self, job: Job, params: GenerationParams, output: GenerationOutput, total: int | None,
                      step_files: list[str]) -> None:
        """Write the images and mark the job succeeded (on the saver thread)."""
        try:
            self._retrying_outages(lambda: self._succeed(job, params, output, total, step_files))
        except SdedgeError as exc:  # e.g. a full disk: the job fails with the reason, the worker goes on
            log.warning("saving the images of job %s failed: %s", job.id, exc.message)
            self._fail(job, exc.code, exc.message, step=total)
        except Exception as exc:  # noqa: BLE001 - nothing may kill the saver thread
            log.exception("saving the images of job %s failed", job.id)
            self._fail(job, "save_failed", f"saving the images failed ({type(exc).__name__})", step=total)
        finally:
            self.saving.discard(job.id)
        self.notifier.notify()

    def _retrying_outages(self, work: Callable[[], None]) -> None:
        """Run work again while the database is unreachable (a fleet's images go to the database too)."""
        backoff = Backoff()
        while True:
            try:
                work()
                return
            except Exception as exc:
                if not is_database_outage(exc) or self._stopping.is_set():
                    raise
                self._database_down(exc, backoff)

    def _succeed(self, job: Job, params: GenerationParams, output: GenerationOutput, total: int | None,
                 step_files: list[str]) -> None:
        started = time.perf_counter()
        loader = _local_loader(self.source)
        model, model_hash = loader.library.name_and_hash(job.model) if loader else (self.source.model_name(), None)
        fused = loader.library.fused(job.model) if loader else []
        files = [
            self.images.save(f"{job.id}-{i}", image, infotext(params, seed, model, model_hash, fused))
            for i, (image, seed) in enumerate(zip(output.images, output.seeds))
        ]
        timings = {**output.timings, "save_ms": round((time.perf_counter() - started) * 1000, 3)}
        result = {"files": files, "seed": params.seed, "seeds": output.seeds, "model": model, "model_hash": model_hash,
                  "parameters": {**params.to_dict(), "model": model}, "timings": timings, "worker": self.ran_on()}
        if step_files:
            result["step_files"] = step_files
        files = [*files, *step_files]  # the job's files (deleted and pruned with it); result["files"]: its images
        size = self.images.size_of(files)
        self._persist(lambda: self.job_store.finish(job.id, JobStatus.SUCCEEDED, result=result, files=files, size=size,
                                                    step=total, attempt=job.attempts), f"the result of job {job.id}")
        self.emit("succeeded", job, stage_seconds=stage_seconds(timings),
                  denoise_steps=params.steps * params.num_images)

    def _stopped(self, job: Job, tracker: _StepTracker, params: GenerationParams,
                 partial: PartialOutput | None) -> None:
        if tracker.lost:
            log.warning("job %s was taken over by another worker; this attempt's work is dropped", job.id)
        elif tracker.timed_out:
            self._fail(job, "timeout", f"job exceeded JOB_TIMEOUT={self.settings.job_timeout:g} s")
        elif self._stopping.is_set() and not tracker.canceled:
            self._persist(lambda: self.job_store.requeue(job.id, attempt=job.attempts),
                          f"the re-queueing of job {job.id}")
            self.emit("requeued", job, reason="shutdown")
        elif self._keep_partial and partial is not None:  # A1111's interrupt: the caller gets the partial image
            step = self.current.step if self.current else None
            loader = _local_loader(self.source)
            engine = (loader.pool.engine(job.model or loader.model_name()) if loader else None) or self.source.engine()
            result, files = keep_partial(engine, self.images, job.id, params, partial,
                                         job.model or self.source.model_name(), step)
            self._fail(job, "canceled", f"interrupted at step {step}; the partial image is kept", JobStatus.CANCELED,
                       step, result=result, files=files)
        else:
            self._fail(job, "canceled", "canceled on request", JobStatus.CANCELED)

    def _fail(self, job: Job, code: str, message: str, status: JobStatus = JobStatus.FAILED,
              step: int | None = None, *, result: dict[str, Any] | None = None, files: list[str] | None = None) -> None:
        if step is None and self.current is not None:
            step = self.current.step
        error = {"code": code, "message": message}
        size = self.images.size_of(files) if files else 0
        self._persist(lambda: self.job_store.finish(job.id, status, result=result, error=error, files=files, size=size,
                                                    step=step, attempt=job.attempts), f"the end of job {job.id}")
        self.emit("canceled" if status is JobStatus.CANCELED else "failed", job, error=error, step=step)

    def emit(self, kind: Kind, job: Job, **facts: object) -> None:
        """Tell the job event listeners (metrics, JSON logs) what happened to job on this node."""
        self.events.emit(event_for(kind, job, model=self.source.model_name(), node=self.node,
                                   now=time.time(), **facts))

    def _cleanup(self, job: Job) -> None:
        # The preview file stays until the job is deleted or pruned: a page may still be loading it.
        self.current = None
        self._lease = None
        self._cancel_current.clear()
        self._keep_partial = False
        self._safely(self.duties.beat_now)
        self.notifier.notify()

    def _safely(self, duty: Callable[[], None]) -> None:
        """A bookkeeping write that may fail in an outage without stopping the job."""
        try:
            duty()
        except Exception as exc:  # noqa: BLE001 - the loop's own retries catch the outage
            if not is_database_outage(exc):
                log.exception("node bookkeeping failed")

class _StepTracker:
    """The step callback of one job: progress, previews, and the decision to stop."""

    def __init__(self, worker: Worker, job: Job, params: GenerationParams) -> None:
        self.worker, self.job, self.params = worker, job, params
        self.settings = worker.settings
        self.deadline = time.monotonic() + self.settings.job_timeout
        self.canceled = self.timed_out = self.lost = False
        self.step_every = step_images.every(job.params)
        self.step_files: list[str] = []
        self._last_write = self._last_preview = 0.0
        self.progress = worker.current
        self.live: LivePreviews | None = None  # PREVIEW_DECODER=tiny on a model with the tiny decoder

    def on_step(self, event: StepEvent) -> bool:
        """Record the step; True asks the engine to stop."""
        progress = self.worker.current
        assert progress is not None
        # Some schedulers (PNDM) run one step more than asked: trust the engine's own count.
        progress.total = event.total_steps * event.num_images
        progress.step = event.image_index * event.total_steps + event.step
        progress.fraction = event.fraction
        self._maybe_preview(event, progress)
        self._maybe_keep_step(event, progress)
        flagged = self._maybe_write(progress, final=event.fraction >= 1.0)
        self.lost = self.worker.lost_current
        self.canceled = self.canceled or (flagged and not self.lost) or self.worker.cancel_requested(self.job.id)
        self.timed_out = time.monotonic() > self.deadline
        self.worker.notifier.notify()
        return self.canceled or self.timed_out or self.lost or self.worker.stopping

    def _maybe_write(self, progress: Progress, final: bool) -> bool:
        now = time.monotonic()
        if not final and now - self._last_write < 0.25:  # SQL writes at most 4 per second
            return False
        self._last_write = now
        self.worker.emit("progress", self.job, step=progress.step, total=progress.total)
        try:
            return self.worker.job_store.set_progress(self.job.id, progress.step, progress.total, progress.preview,
                                                      attempt=self.job.attempts,
                                                      lease_seconds=self.settings.lease_seconds)
        except Exception as exc:  # noqa: BLE001 - progress is not worth failing the job for; the result is
            if not is_database_outage(exc):
                raise
            return False

    def _maybe_preview(self, event: StepEvent, progress: Progress) -> None:
        every, min_gap = self.settings.preview_every_steps, self.settings.preview_min_interval_ms / 1000
        now = time.monotonic()
        if not every or (event.latent is None and event.preview is None) or event.step % every \
                or now - self._last_preview < min_gap:
            return
        self._last_preview = now
        if self.live is not None and event.preview is None and LivePreviews.fits(event.latent):
            self.live.offer(event.latent)  # decoded off genai's callback, within PREVIEW_BUDGET
            return
        image = event.preview
        if image is None and event.latent is not None:
            image = preview_image(event.latent, self.params.width, self.params.height)
        if image is None:
            return
        self.save_preview(image)

    def save_preview(self, image: Image.Image) -> None:
        """Write the job's live preview (the tiny decoder's thread calls this too)."""
        assert self.progress is not None
        self.progress.preview = self.worker.images.save_preview(self.job.id, image)
        self.worker.notifier.notify()

    def _maybe_keep_step(self, event: StepEvent, progress: Progress) -> None:
        """The job asked for step images: keep this step's preview as its own file (named by the step)."""
        if self.step_every and event.latent is not None and not progress.step % self.step_every:
            image = preview_image(event.latent, self.params.width, self.params.height)
            if image is not None:  # a latent with no preview map (SD3, FLUX) keeps no step image
                self.step_files.append(self.worker.images.save(step_images.file_name(self.job.id, progress.step), image))



def _local_loader(source: object) -> EngineLoader | None:
    """The loader behind a local device's engine source (with the model library's pool), else None (a remote)."""
    loader = getattr(source, "loader", None)
    return loader if isinstance(loader, EngineLoader) else None
