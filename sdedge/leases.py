"""Keeping a running job's lease: renewed in the background while the job runs, so a long step (a VAE
decode, a model compile) never lets it lapse, and told when another node took the job over."""

from __future__ import annotations

import logging
import threading

from sdedge.foreign_errors import is_database_outage
from sdedge.job_store import JobStore

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews one claim every third of LEASE_SECONDS until stopped; `lost` is set if the claim is gone."""

    def __init__(self, job_store: JobStore, job_id: str, attempt: int, lease_seconds: float) -> None:
        self.job_store, self.job_id, self.attempt, self.lease_seconds = job_store, job_id, attempt, lease_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sdedge-lease-{job_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                owned = self.job_store.renew(self.job_id, self.attempt, self.lease_seconds)
            except Exception as exc:  # noqa: BLE001 - an outage is retried at the next renewal
                if not is_database_outage(exc):
                    log.exception("renewing the lease of job %s failed", self.job_id)
                continue
            if not owned:
                log.warning("job %s is no longer ours (its lease lapsed and another worker took it, or it "
                            "ended); stopping it", self.job_id)
                self.lost.set()
                return
