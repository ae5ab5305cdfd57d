"""The node's workers on the one durable queue: one per local device and one per remote model.

OPENVINO_DEVICE may list devices (GPU,CPU; GPU,NPU; GPU.0,GPU.1): each device present gets a loader
with its own pipelines and a worker that claims the jobs of the local models that asked for its device
class or for none. Each REMOTE_ENGINES entry gets a worker that claims only that model's jobs, so a
remote job runs while the local device works on another. Recovery after a crash runs once for the
node, before any worker claims; housekeeping runs on whichever worker's thread is free.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sdedge.config import Settings
from sdedge.engine.devices import device_class
from sdedge.engine.loader import EngineLoader
from sdedge.engine.params import Engine
from sdedge.file_store import FileStore
from sdedge.housekeeping import MAX_ATTEMPTS, Housekeeping
from sdedge.job_events import JobEvents, released_events
from sdedge.job_store import JobStore, Released
from sdedge.nodes import NodeRegistry
from sdedge.notifier import Notifier
from sdedge.remote.source import RemoteSource
from sdedge.worker import Progress, Worker
from sdedge.worker_parts import ClaimScope

log = logging.getLogger(__name__)


class LocalSource:
    """A local device's loader as a worker's engine source."""

    def __init__(self, loader: EngineLoader) -> None:
        self.loader = loader

    @property
    def ready(self) -> bool:
        """True once the device's engine is loaded."""
        return self.loader.ready

    def engine(self) -> Engine:
        """The device's engine, or ModelNotReady with the reason."""
        return self.loader.engine()

    def engine_or_none(self) -> Engine | None:
        """The engine when loaded."""
        return self.loader.engine_or_none()

    def model_name(self) -> str:
        """The local model's short name."""
        return self.loader.model_name()

    def device_class(self) -> str:
        """The class of jobs this device takes: the actual device's (after a fallback to the CPU: CPU), else
        the planned one's (mock mode)."""
        engine = self.loader.engine_or_none()
        return device_class(engine.device if engine else "") or device_class(self.loader.device) or "CPU"

    def describe(self) -> dict[str, Any]:
        """The device: requested, actual, its class; the loader's state."""
        engine = self.loader.engine_or_none()
        return {"device": {"requested": self.loader.device, "actual": engine.device if engine else None,
                           "class": self.device_class()},
                "state": self.loader.state.value, "reason": None if self.loader.ready else self.loader.reason,
                "remote": None}


class SharedDuties:
    """Crash recovery once per node (before any worker claims), then housekeeping, from any worker's thread."""

    def __init__(self, job_store: JobStore, housekeeping: Housekeeping, node: str) -> None:
        self.job_store, self.housekeeping, self.node = job_store, housekeeping, node  # its on_released: events
        self._lock = threading.Lock()
        self._recovered = False

    def run(self) -> None:
        """Recover first (every worker waits for it), then whatever housekeeping is due (one worker does it)."""
        if not self._lock.acquire(blocking=not self._recovered):
            return
        try:
            if not self._recovered:
                released = self.job_store.recover(f"{self.node}:", MAX_ATTEMPTS)
                if released.jobs:
                    log.warning("recovered after a crash: %d job(s) re-queued, %d failed as interrupted",
                                *released[:2])
                    if self.housekeeping.on_released:
                        self.housekeeping.on_released(released, "recovered")
                self._recovered = True
            self.housekeeping.run()
        finally:
            self._lock.release()

    def beat_now(self) -> None:
        """Record the node's state at once (a job started or ended on one of its workers)."""
        with self._lock:
            self.housekeeping.beat_now()


class WorkerPool:
    """Every worker of this node, and the answers the service needs about them."""

    def __init__(self, settings: Settings, job_store: JobStore, images: FileStore, input_files: FileStore,
                 notifier: Notifier, nodes: NodeRegistry, loaders: list[EngineLoader],
                 remotes: list[RemoteSource], events: JobEvents | None = None) -> None:
        self.settings, self.job_store, self.images, self.input_files = settings, job_store, images, input_files
        self.events = events or JobEvents()
        self.notifier, self.loaders, self.remotes = notifier, loaders, remotes
        self.node = nodes.node
        self.housekeeping = Housekeeping(settings, job_store, images, input_files, nodes, self.describe,
                                         on_released=self._released)
        self.duties = SharedDuties(job_store, self.housekeeping, nodes.node)
        self._stopping = threading.Event()
        self.local_sources = [LocalSource(loader) for loader in loaders]
        self.workers = [self._worker(source, source.loader.device, self._local_scope(source), nodes.node)
                        for source in self.local_sources]
        self.workers += [self._worker(remote, f"remote-{remote.remote.id}", self._remote_scope(remote), nodes.node)
                         for remote in remotes]

    def _released(self, released: Released, reason: str) -> None:
        """Job events for jobs taken back from a dead worker (a crash before this start, a lapsed lease)."""
        default = self.loaders[0].model_name() if self.loaders else self.settings.stable_diffusion_repo_id
        for event in released_events(released, reason, model=default, node=self.node):
            self.events.emit(event)

    def _worker(self, source: Any, label: str, scope: Callable[[], ClaimScope], node: str) -> Worker:
        return Worker(self.settings, self.job_store, self.images, self.input_files, source, self.notifier, node,
                      label=label, scope=scope, duties=self.duties,
                      events=self.events)

    def local_models(self) -> list[str | None]:
        """The model ids local workers claim: None (the default model) and the library's models this node can run
        (every one when it may download them, else the installed ones); never a remote model's."""
        return [None, *self.loaders[0].local_model_ids()] if self.loaders else [None]

    def _local_scope(self, source: LocalSource) -> Callable[[], ClaimScope]:
        return lambda: ClaimScope(self.local_models(), [source.device_class()])

    @staticmethod
    def _remote_scope(remote: RemoteSource) -> Callable[[], ClaimScope]:
        scope = ClaimScope([remote.remote.id], None)
        return lambda: scope

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start every worker (after sweeping a crash's partial files, when no other node shares the folders)."""
        if self.job_store.is_local:
            # No other node writes into these folders, so a partial file is a crash's. Swept here, before
            # the app answers its first request: a submission's own partial input file is never taken.
            self.images.sweep_partial_files()
            self.input_files.sweep_partial_files()
        for worker in self.workers:
            worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every worker: running jobs stop at their next step and go back to the queue."""
        self._stopping.set()
        for worker in self.workers:
            worker.signal_stop()
        for worker in self.workers:
            worker.stop(timeout)
        for remote in self.remotes:
            remote.close()

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stopping.is_set()

    # -- what the service asks -------------------------------------------------------------------
    def request_cancel(self, job_id: str, keep_partial: bool = False) -> None:
        """Tell the worker running job_id (if one of ours) to stop at its next step (keep_partial: A1111's interrupt)."""
        for worker in self.workers:
            worker.request_cancel(job_id, keep_partial)

    @property
    def database_error(self) -> str | None:
        """Why a worker cannot reach the job database, or None."""
        return next((w.database_error for w in self.workers if w.database_error), None)

    def running(self) -> list[Progress]:
        """Live progress of every job this node runs."""
        return [current for worker in self.workers if (current := worker.current) is not None]

    def progress_of(self, job_id: str) -> Progress | None:
        """Live progress of job_id when one of our workers runs it."""
        return next((p for p in self.running() if p.job_id == job_id), None)

    @property
    def saving(self) -> set[str]:
        """Jobs whose images are being written."""
        return set().union(*(worker.saving for worker in self.workers))

    def describe(self) -> list[dict[str, Any]]:
        """Each worker: device or remote model, state, current job (the nodes table, /health, /queue/status)."""
        return [worker.describe() for worker in self.workers]

    def device_classes(self) -> set[str]:
        """The device classes this node's workers take."""
        return {source.device_class() for source in self.local_sources}

    def remote(self, model_id: str | None) -> RemoteSource | None:
        """This node's remote model of that id, if any."""
        return next((r for r in self.remotes if r.remote.id == model_id), None)
