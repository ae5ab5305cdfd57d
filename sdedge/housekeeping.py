"""What every node does between jobs, whoever ran them: re-queue jobs whose lease lapsed, say it is alive,
prune old jobs and (in a fleet) drop cached files the database no longer has.

Each duty runs at its own pace from the worker's loop; a database error propagates to the loop, which
backs off and tries again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sdedge.config import Settings
from sdedge.file_store import FileStore, remove_job_files
from sdedge.job_store import JobStore, Released
from sdedge.nodes import NodeRegistry

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # a job lost twice (crash, lapsed lease) fails as interrupted
PRUNE_EVERY_SECONDS = 60.0
BEAT_EVERY_SECONDS = 5.0


class Housekeeping:
    """The periodic duties of one node."""

    def __init__(self, settings: Settings, job_store: JobStore, images: FileStore, input_files: FileStore,
                 nodes: NodeRegistry, describe_workers: Callable[[], list[dict[str, Any]]],
                 on_released: Callable[[Released, str], None] | None = None) -> None:
        self.settings, self.job_store, self.images, self.input_files = settings, job_store, images, input_files
        self.nodes, self.describe_workers = nodes, describe_workers
        self.on_released = on_released  # told of every job taken back from a dead worker (job events)
        self._last: dict[str, float] = {}

    def run(self) -> None:
        """Do whatever is due."""
        if self._due("expire", max(0.5, self.settings.lease_seconds / 4)):
            released = self.job_store.requeue_expired(MAX_ATTEMPTS, self.settings.lease_seconds)
            if released.jobs:
                log.warning("leases lapsed: %d job(s) re-queued, %d failed as interrupted", *released[:2])
                if self.on_released:
                    self.on_released(released, "lease_expired")
        if self._due("beat", BEAT_EVERY_SECONDS):
            self.nodes.beat(self.describe_workers())
        if self._due("prune", PRUNE_EVERY_SECONDS):
            self.prune()

    def beat_now(self) -> None:
        """Record this node's state at once (a job started or ended)."""
        self.nodes.beat(self.describe_workers())
        self._last["beat"] = time.monotonic()

    def prune(self) -> None:
        """Remove finished jobs past JOB_RETENTION_HOURS, then the oldest past MAX_OUTPUT_MB, with their files."""
        cutoff = time.time() - self.settings.job_retention_hours * 3600
        victims = self.job_store.prunable(cutoff, self.settings.max_output_mb * 1024 * 1024)
        for job in victims:
            remove_job_files(self.images, self.input_files, job)
        if victims:
            self.job_store.remove([job.id for job in victims])
            log.info("pruned %d old job(s)", len(victims))
        self.images.sweep_cache()
        self.input_files.sweep_cache()

    def _due(self, duty: str, every: float) -> bool:
        now = time.monotonic()
        if now - self._last.get(duty, -1e9) < every:
            return False
        self._last[duty] = now
        return True
