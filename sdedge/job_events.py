"""Job events: what happened to a job, told once to whoever listens (metrics, JSON logs).

The service says `submitted` and `canceled` (a queued job); the worker says `started`, `progress`,
`succeeded`, `failed`, `canceled` (a running job) and `requeued` (one it handed back at shutdown); the
node's duties say `requeued`, `failed` or `canceled` for the jobs a crash left running (recovered at
start-up) or whose lease lapsed (`released_events`, with the reason). Listeners run in the emitting
thread and must be quick; one that raises is logged and never stops a job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sdedge.job_store import Job, Released

log = logging.getLogger(__name__)

Kind = Literal["submitted", "started", "progress", "succeeded", "failed", "canceled", "requeued"]
KINDS: tuple[Kind, ...] = ("submitted", "started", "progress", "succeeded", "failed", "canceled", "requeued")
ENDINGS = ("succeeded", "failed", "canceled")
# Stage timings the engine and worker record in a job's result (milliseconds), by stage name.
STAGE_TIMINGS = {"text_encoder": "text_encoder_ms", "denoise": "unet_ms", "decode": "vae_decoder_ms",
                 "save": "save_ms"}


def job_model(job: Job, default: str) -> str:
    """The model a job ran (or will run) on: the one it asked for (its `model` column, else its params'),
    or the server's default."""
    chosen = job.model or job.params.get("model")
    return str(chosen) if chosen else default


@dataclass(frozen=True)
class JobEvent:
    """One thing that happened to a job, with the facts a metric or log line needs."""

    kind: Kind
    job_id: str
    mode: str
    model: str
    node: str
    priority: int = 0
    queue_wait_seconds: float | None = None  # submitted -> started
    run_seconds: float | None = None  # started -> ended
    stage_seconds: dict[str, float] = field(default_factory=dict)  # per stage, summed over a job's images
    denoise_steps: int | None = None  # steps over all of a job's images: denoise seconds per step
    step: int | None = None
    total: int | None = None
    error: dict[str, Any] | None = None
    reason: str | None = None  # why the node's duties moved the job: "recovered" (start-up) or "lease_expired"

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON-ready fields, unset ones left out."""
        found = {"event": self.kind, "job_id": self.job_id, "mode": self.mode, "model": self.model, "node": self.node,
                 "priority": self.priority, "queue_wait_seconds": self.queue_wait_seconds,
                 "run_seconds": self.run_seconds, "stage_seconds": self.stage_seconds or None,
                 "step": self.step, "total": self.total, "error": self.error, "reason": self.reason}
        return {key: value for key, value in found.items() if value is not None}


def event_for(kind: Kind, job: Job, *, model: str, node: str, now: float | None = None,
              **extra: Any) -> JobEvent:
    """An event of job, its queue wait and run time taken from the job's own timestamps."""
    wait = run = None
    if job.started_at is not None:
        wait = max(0.0, job.started_at - job.created_at)
        if now is not None and kind in ENDINGS:
            run = max(0.0, now - job.started_at)
    return JobEvent(kind, job.id, job.type, job_model(job, model), node, job.priority, wait, run, **extra)


def released_events(released: Released, reason: str, *, model: str, node: str) -> list[JobEvent]:
    """The events of jobs a node took back from a dead worker: re-queued, failed as interrupted, or canceled
    (their cancel had been asked). No run time: the worker's end is not known."""
    return [event_for(kind, job, model=model, node=node, error=job.error, reason=reason)
            for kind, job in released.jobs]


def stage_seconds(timings: dict[str, Any]) -> dict[str, float]:
    """A job result's stage timings (ms) as seconds per stage name."""
    return {stage: float(timings[key]) / 1000 for stage, key in STAGE_TIMINGS.items()
            if isinstance(timings.get(key), (int, float))}


class JobEvents:
    """The listeners of one app's job events."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[JobEvent], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[JobEvent], None]) -> None:
        """Call listener with every later event."""
        with self._lock:
            self._listeners.append(listener)

    def emit(self, event: JobEvent) -> None:
        """Tell every listener; a failing listener is logged, never raised into the job's thread."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - bookkeeping must not fail a job
                log.exception("a job event listener failed on %s of %s", event.kind, event.job_id)
