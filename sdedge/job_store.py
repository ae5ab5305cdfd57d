"""The job store: durable jobs in SQL (SQLite by default), their states, the atomic claim, recovery, pruning.

The store is the only code that talks SQL. Any number of workers, in one process or several sharing
a server database, may call `claim_next`: the claim is one UPDATE guarded by `status = 'queued'`.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from collections.abc import Sequence
from enum import Enum
from typing import Any, Literal, NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine, RowMapping
from sqlalchemy.exc import IntegrityError

from sdedge.database import connect, db_now
from sdedge.errors import Conflict, NotFound, detail, map_exceptions
from sdedge.foreign_errors import DATABASE_ERRORS
from sdedge.job_table import affinity_pick, claim_filters, jobs_table
from sdedge.migrations import upgrade_database


class JobStatus(str, Enum):
    """Where a job is in its life, by the database's names (clients see `api`: sdedge.job_view)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def finished(self) -> bool:
        """True for the states a job never leaves."""
        return self in FINISHED

    @property
    def api(self) -> str:
        """The name clients see (seed 002's): running is processing, succeeded is completed."""
        return {"running": "processing", "succeeded": "completed"}.get(self.value, self.value)


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
FINISHED_VALUES = [s.value for s in FINISHED]


@dataclass
class Job:
    """One job row, decoded."""

    id: str
    type: str
    status: JobStatus
    priority: int
    request: dict[str, Any]
    params: dict[str, Any]
    created_at: float
    seq: float = 0.0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    progress_step: int = 0
    progress_total: int = 0
    preview: str | None = None
    files: list[str] = field(default_factory=list)
    attempts: int = 0
    cancel_requested: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    idempotency_key: str | None = None
    node: str | None = None  # the node that runs or ran it
    owner: str | None = None
    model: str | None = None  # the model id asked for; None: the server's default model
    device: str | None = None  # the device class asked for; None: any worker may run it
    worker: str | None = None  # who runs it (node:pid:label) while it runs

    @classmethod
    def from_row(cls, row: RowMapping) -> Job:
        """Decode a jobs-table row."""
        return cls(
            id=row["id"], type=row["type"], status=JobStatus(row["status"]), priority=row["priority"],
            request=json.loads(row["request"]), params=json.loads(row["params"]), created_at=row["created_at"],
            seq=row["seq"],
            result=_loads(row["result"]), error=_loads(row["error"]), progress_step=row["progress_step"],
            progress_total=row["progress_total"], preview=row["preview"], files=json.loads(row["files"]),
            attempts=row["attempts"], cancel_requested=bool(row["cancel_requested"]),
            started_at=row["started_at"], finished_at=row["finished_at"], idempotency_key=row["idempotency_key"],
            node=row.get("node"),
            owner=row.get("owner"), model=row.get("model"), device=row.get("device"), worker=row.get("worker"),
        )


class Released(NamedTuple):
    """Running jobs taken back from a dead worker: counts, and each job (as left) with what became of it."""

    requeued: int
    failed: int
    jobs: tuple[tuple[Literal["canceled", "failed", "requeued"], Job], ...] = ()


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def worker_name(node: str) -> str:
    """Who claimed a job: the node (persistent, per DATA_DIR) and the process, never the hostname alone."""
    return f"{node}:{os.getpid()}"


def new_job_id() -> str:
    """Short unique id, safe in file names and URLs."""
    return f"job-{uuid.uuid4().hex[:16]}"


class JobStore:
    """Jobs in SQL through SQLAlchemy."""

    def __init__(self, url: str) -> None:
        self.db: Engine = connect(url)  # SQLAlchemy's engine: the database connection pool
        self.is_local = self.db.dialect.name == "sqlite"  # one node's own file, not a shared server
        upgrade_database(self.db)  # the schema is the migrations' (sdedge/migrations), not create_all's

    def ping(self) -> None:
        """Raise DatabaseUnavailable when the database cannot be reached."""
        with map_exceptions(DATABASE_ERRORS), self.db.connect() as conn:
            conn.execute(select(1))

    # -- writing -------------------------------------------------------------------------------
    def add(self, job_type: str, request: dict[str, Any], params: dict[str, Any], *, priority: int = 0,
            idempotency_key: str | None = None, owner: str | None = None, model: str | None = None,
            device: str | None = None) -> tuple[Job, bool]:
        """Insert a queued job; with a known idempotency key return the existing job and False."""
        if idempotency_key and (existing := self.find_by_key(idempotency_key)):
            return existing, False
        now, job_id = time.time(), new_job_id()
        row = {"id": job_id, "type": job_type, "status": JobStatus.QUEUED.value, "priority": priority,
               "seq": time.time_ns() / 1e9, "idempotency_key": idempotency_key, "request": json.dumps(request),
               "params": json.dumps(params), "files": "[]", "bytes": 0, "attempts": 0,
               "cancel_requested": False, "created_at": now, "progress_total": params.get("steps", 0) or 0,
               "progress_step": 0, "owner": owner, "model": model, "device": device}
        try:
            with self.db.begin() as conn:
                conn.execute(jobs_table.insert().values(**row))
        except IntegrityError:  # the same key submitted concurrently: the other insert won
            existing = self.find_by_key(idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return existing, False
        return self.get(job_id), True

    def claim_next(self, worker: str, *, node: str | None = None, lease_seconds: float = 60.0,
                   models: Sequence[str | None] | None = None, devices: Sequence[str] | None = None,
                   prefer_model: str | None = None, affinity: tuple[int, float] = (0, 0.0)) -> Job | None:
        """Atomically move the best queued job (priority, then FIFO) to running for this worker, with a lease.

        `models` limits the claim to jobs for those model ids (None in it: jobs for the default model);
        `devices` to jobs that asked for no device class or for one of these. The claim counts an attempt;
        the attempt number is the fencing token every later write of this worker names, so a worker whose
        lease lapsed can never overwrite a newer attempt. With prefer_model (the loaded model) and
        affinity = (max skips, max wait seconds), job_table.affinity_pick may choose a later job of the
        head's priority for that model instead.
        """
        c = jobs_table.c
        filters = claim_filters(models, devices)
        best = (
            select(c.id).where(c.status == JobStatus.QUEUED.value, *filters)
            .order_by(c.priority.desc(), c.seq.asc()).limit(1)
        )
        if prefer_model is not None and affinity[0] > 0:
            with self.db.connect() as conn:
                picked = affinity_pick(conn, filters, prefer_model, affinity[0], affinity[1], time.time())
            if picked is not None:  # the guarded UPDATE below still claims it only while it is queued
                best = select(c.id).where(c.id == picked, c.status == JobStatus.QUEUED.value)
        if self.db.dialect.name == "postgresql":
            best = best.with_for_update(skip_locked=True)
        now = db_now(self.db)
        claim = (
            update(jobs_table)
            .where(c.id == best.scalar_subquery(), c.status == JobStatus.QUEUED.value)
            .values(status=JobStatus.RUNNING.value, worker=worker, node=node, started_at=now, heartbeat_at=now,
                    lease_expires_at=now + lease_seconds, attempts=c.attempts + 1, progress_step=0)
            .returning(*jobs_table.c)
        )
        with self.db.begin() as conn:
            row = conn.execute(claim).mappings().first()
        return Job.from_row(row) if row else None

    def _owned(self, job_id: str, attempt: int | None) -> Any:
        """The rows a write may touch: the job, and with a fencing token only while that attempt runs it."""
        c = jobs_table.c
        if attempt is None:
            return c.id == job_id
        return (c.id == job_id) & (c.attempts == attempt) & (c.status == JobStatus.RUNNING.value)

    def set_progress(self, job_id: str, step: int, total: int, preview: str | None, *, attempt: int | None = None,
                     lease_seconds: float = 60.0) -> bool:
        """Record progress and renew the lease; True when the job should stop (canceled, or no longer ours)."""
        now = db_now(self.db)
        values: dict[str, Any] = {"progress_step": step, "progress_total": total, "heartbeat_at": now,
                                  "lease_expires_at": now + lease_seconds}
        if preview:
            values["preview"] = preview
        with self.db.begin() as conn:
            owned = conn.execute(update(jobs_table).where(self._owned(job_id, attempt)).values(**values)).rowcount
            flag = conn.execute(select(jobs_table.c.cancel_requested).where(jobs_table.c.id == job_id)).scalar()
        return bool(flag) or not owned

    def renew(self, job_id: str, attempt: int, lease_seconds: float) -> bool:
        """Extend a running job's lease; False when this attempt no longer owns it."""
        now = db_now(self.db)
        with self.db.begin() as conn:
            return bool(conn.execute(update(jobs_table).where(self._owned(job_id, attempt))
                                     .values(heartbeat_at=now, lease_expires_at=now + lease_seconds)).rowcount)

    def finish(self, job_id: str, status: JobStatus, *, result: dict[str, Any] | None = None,
               error: dict[str, Any] | None = None, files: list[str] | None = None, size: int = 0,
               step: int | None = None, attempt: int | None = None) -> bool:
        """Mark a running job finished, with its result or error, its files and last step; False if not ours."""
        values: dict[str, Any] = {"status": status.value, "finished_at": db_now(self.db), "worker": None,
                                  "lease_expires_at": None, "result": json.dumps(result) if result else None,
                                  "error": json.dumps(error) if error else None}
        if files is not None:
            values.update(files=json.dumps(files), bytes=size)
        if step is not None:
            values["progress_step"] = step
        with self.db.begin() as conn:
            return bool(conn.execute(update(jobs_table).where(self._owned(job_id, attempt)).values(**values)).rowcount)

    def requeue(self, job_id: str, *, count_attempt: bool = False, attempt: int | None = None) -> bool:
        """Put a running job back in the queue (graceful stop: the attempt does not count); False if not ours."""
        c = jobs_table.c
        attempts = c.attempts if count_attempt else c.attempts - 1
        with self.db.begin() as conn:
            return bool(conn.execute(
                update(jobs_table).where(self._owned(job_id, attempt), c.status == JobStatus.RUNNING.value).values(
                    status=JobStatus.QUEUED.value, worker=None, node=None, attempts=attempts, progress_step=0,
                    cancel_requested=False, started_at=None, preview=None, lease_expires_at=None)).rowcount)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, or flag a running one to stop at its next step; 409 once it ended."""
        c = jobs_table.c
        with self.db.begin() as conn:
            done = conn.execute(update(jobs_table).where(c.id == job_id, c.status == JobStatus.QUEUED.value)
                                .values(status=JobStatus.CANCELED.value, finished_at=db_now(self.db))).rowcount
            if not done:
                done = conn.execute(update(jobs_table).where(c.id == job_id, c.status == JobStatus.RUNNING.value)
                                    .values(cancel_requested=True)).rowcount
        job = self.get(job_id)
        if not done:
            message = f"job {job_id} is already {job.status.api}; there is nothing to cancel"
            raise Conflict(message, detail(None, message, "state", status=job.status.api))
        return job

    def delete(self, job_id: str) -> Job:
        """Remove a finished job's row (the caller removes its files); 409 while it is not finished."""
        job = self.get(job_id)
        if not job.status.finished:
            message = f"job {job_id} is {job.status.api}; cancel it first"
            raise Conflict(message, detail(None, message, "state", status=job.status.api))
        with self.db.begin() as conn:
            conn.execute(jobs_table.delete().where(jobs_table.c.id == job_id))
        return job

    # -- recovery and pruning ------------------------------------------------------------------
    def recover(self, worker_prefix: str, max_attempts: int = 2) -> Released:
        """After a restart: this node's running jobs (its old process is gone) end their lease now.

        Returns (re-queued, failed, jobs): a job is re-queued once and failed as interrupted on its next loss.
        """
        return self._release(jobs_table.c.worker.like(f"{worker_prefix}%"), max_attempts)

    def requeue_expired(self, max_attempts: int = 2, legacy_lease_seconds: float = 60.0) -> Released:
        """Any node: running jobs whose lease lapsed (their worker died) are re-queued, or failed past max_attempts."""
        c = jobs_table.c
        # rows from before leases existed have only a heartbeat
        expires = func.coalesce(c.lease_expires_at, c.heartbeat_at + legacy_lease_seconds)
        return self._release(expires < db_now(self.db), max_attempts)

    def _release(self, which: Any, max_attempts: int) -> Released:
        c, table = jobs_table.c, jobs_table
        lost = (c.status == JobStatus.RUNNING.value) & which
        ended = {"worker": None, "lease_expires_at": None, "finished_at": db_now(self.db)}
        canceled = json.dumps({"code": "canceled", "message": "canceled on request"})
        interrupted = json.dumps({"code": "interrupted", "message": "the server running this job stopped, twice"})
        with self.db.begin() as conn:
            def moved(statement: Any) -> list[Job]:  # RETURNING: the rows as this update left them
                return [Job.from_row(row) for row in conn.execute(statement.returning(*table.c)).mappings()]
            canceled_jobs = moved(update(table).where(lost, c.cancel_requested.is_(True)).values(
                status=JobStatus.CANCELED.value, error=canceled, **ended))
            failed = moved(update(table).where(lost, c.attempts >= max_attempts).values(
                status=JobStatus.FAILED.value, error=interrupted, **ended))
            requeued = moved(update(table).where(lost).values(
                status=JobStatus.QUEUED.value, worker=None, node=None, lease_expires_at=None, progress_step=0,
                started_at=None, preview=None, cancel_requested=False))
        jobs: list[tuple[Literal["canceled", "failed", "requeued"], Job]] = [
            *(("canceled", j) for j in canceled_jobs), *(("failed", j) for j in failed),
            *(("requeued", j) for j in requeued)]
        return Released(len(requeued), len(failed), tuple(jobs))

    def prunable(self, older_than: float, max_total_bytes: int) -> list[Job]:
        """Finished jobs to remove: older than the cut-off, then the oldest until under the size budget."""
        c = jobs_table.c
        with self.db.connect() as conn:
            rows = conn.execute(select(jobs_table).where(c.status.in_(FINISHED_VALUES))
                                .order_by(c.finished_at.asc())).mappings().all()
            total = conn.execute(select(func.coalesce(func.sum(c.bytes), 0))).scalar() or 0
        victims = []
        for row in rows:
            if row["finished_at"] < older_than or total > max_total_bytes:
                victims.append(Job.from_row(row))
                total -= row["bytes"]
        return victims

    def remove(self, job_ids: list[str]) -> None:
        """Delete rows without checks (pruning)."""
        with self.db.begin() as conn:
            conn.execute(jobs_table.delete().where(jobs_table.c.id.in_(job_ids)))

    # -- reading -------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job:
        """One job, or NotFound."""
        with self.db.connect() as conn:
            row = conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).mappings().first()
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return Job.from_row(row)

    def find_by_key(self, key: str) -> Job | None:
        """The job submitted with this idempotency key, if any."""
        with self.db.connect() as conn:
            row = conn.execute(select(jobs_table).where(jobs_table.c.idempotency_key == key)).mappings().first()
        return Job.from_row(row) if row else None

    def list_jobs(self, status: str | None, limit: int, before: float | None, *, owner: str | None = None,
                  any_owner: bool = True) -> list[Job]:
        """Jobs newest first, optionally of one status, created before a time (for paging), of one owner."""
        c = jobs_table.c
        query = select(jobs_table).order_by(c.seq.desc()).limit(limit)
        if not any_owner:
            query = query.where(c.owner == owner)
        if status:
            query = query.where(c.status == status)
        if before is not None:
            query = query.where(c.seq < before)
        with self.db.connect() as conn:
            return [Job.from_row(r) for r in conn.execute(query).mappings().all()]

    def position(self, job: Job) -> int:
        """How many queued jobs run before this one (0: next)."""
        c = jobs_table.c
        ahead = (c.status == JobStatus.QUEUED.value) & (
            (c.priority > job.priority) | ((c.priority == job.priority) & (c.seq < job.seq)))
        with self.db.connect() as conn:
            return int(conn.execute(select(func.count()).where(ahead)).scalar() or 0)

    def running(self) -> list[Job]:
        """Every running job, on whichever node."""
        with self.db.connect() as conn:
            rows = conn.execute(select(jobs_table).where(jobs_table.c.status == JobStatus.RUNNING.value)
                                .order_by(jobs_table.c.started_at)).mappings().all()
        return [Job.from_row(row) for row in rows]

    def counts(self, *, owner: str | None = None) -> dict[str, int]:
        """Number of jobs per status (of one owner's jobs, when given)."""
        c = jobs_table.c
        query = select(c.status, func.count()).group_by(c.status)
        if owner is not None:
            query = query.where(c.owner == owner)
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return {status.value: 0 for status in JobStatus} | {s: n for s, n in rows}

    def tally(self, *names: str) -> list[tuple[Any, ...]]:
        """Job counts grouped by the named columns, as rows of (*values, count) (for monitoring)."""
        columns = [jobs_table.c[name] for name in names]
        with self.db.connect() as conn:
            return [tuple(row) for row in conn.execute(select(*columns, func.count()).group_by(*columns)).all()]

    def average_seconds(self, last: int = 50) -> float | None:
        """Mean run time of the last succeeded jobs."""
        c = jobs_table.c
        recent = (select((c.finished_at - c.started_at).label("d")).where(c.status == JobStatus.SUCCEEDED.value)
                  .order_by(c.finished_at.desc()).limit(last).subquery())
        with self.db.connect() as conn:
            value = conn.execute(select(func.avg(recent.c.d))).scalar()
        return float(value) if value is not None else None
