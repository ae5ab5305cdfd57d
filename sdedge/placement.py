"""Where a submitted job may run: which model's workers (a remote model's, or the local ones) and which
device class, checked against what this node and the live nodes of its fleet have.

A job for a remote model is stored with `model` = its id, so only that model's worker claims it; a job
asking for a device class (`device`) is claimed only by a worker of that class. A request no worker of
the fleet could run is a 400 naming what there is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sdedge.errors import InvalidRequest, ModelNotReady, detail
from sdedge.worker_pool import WorkerPool


@dataclass(frozen=True)
class Placement:
    """The job's `model` and `device` columns, and whether a remote engine runs it."""

    model: str | None
    device: str | None
    remote: bool


def remote_of(fleet_workers: list[dict[str, Any]], pool: WorkerPool, model: str | None) -> dict[str, Any] | None:
    """The remote model named model, as this node or a live node of the fleet serves it, or None."""
    if model is None:
        return None
    mine = pool.remote(model)
    if mine is not None:
        return {**mine.remote.describe(), "ready": mine.ready}
    for worker in fleet_workers:
        remote = worker.get("remote") or {}
        if remote.get("id") == model:
            return {**remote, "ready": worker.get("state") == "ready"}
    return None


def place(mode: str, model: str | None, device: str | None, pool: WorkerPool,
          fleet_workers: list[dict[str, Any]]) -> Placement:
    """Validate the request's model and device against the workers there are; the job's placement."""
    remote = remote_of(fleet_workers, pool, model)
    if remote is not None:
        return _remote_placement(mode, remote, device)
    if device is not None:
        classes = pool.device_classes() | {str((w.get("device") or {}).get("class")) for w in fleet_workers
                                           if (w.get("device") or {}).get("class")}
        if device not in classes:
            have = ", ".join(sorted(classes)) or "none"
            message = f"no worker runs on a {device}: the devices here are {have}"
            raise InvalidRequest(message, detail("device", message, "enum", valid=sorted(classes)))
    # A model that is not a remote one is the local model (the model library resolves local ids).
    return Placement(None, device, False)


def _remote_placement(mode: str, remote: dict[str, Any], device: str | None) -> Placement:
    name = remote["id"]
    if device is not None:
        message = f"model {name} runs on a remote engine ({remote.get('kind')}); device does not apply"
        raise InvalidRequest(message, detail("device", message, "conflict"))
    modes = list(remote.get("modes") or [])
    if mode not in modes:
        message = f"model {name} (a remote {remote.get('kind')} engine) cannot run {mode}; it runs {', '.join(modes)}"
        raise InvalidRequest(message, detail("model", message, "mode", modes=modes))
    if not remote.get("ready"):
        reason = f"remote model {name} cannot run: {remote.get('problem') or 'its worker is not ready'}"
        raise ModelNotReady(reason, detail("model", reason, "state"))
    return Placement(name, None, True)
