"""The jobs table: its columns and indexes (the migrations in sdedge/migrations create them), and claim filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text, func, or_, select

from sdedge.database import metadata

jobs_table = Table(
    "jobs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("seq", Float, nullable=False),  # submission order (FIFO within a priority)
    Column("idempotency_key", String(200), unique=True, nullable=True),
    Column("request", Text, nullable=False),  # the request as the client sent it (JSON)
    Column("params", Text, nullable=False),  # resolved engine parameters (JSON)
    Column("result", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("progress_step", Integer, nullable=False, default=0),
    Column("progress_total", Integer, nullable=False, default=0),
    Column("preview", String(260), nullable=True),
    Column("files", Text, nullable=False, default="[]"),
    Column("bytes", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("worker", String(120), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("lease_expires_at", Float, nullable=True),  # a running job's claim lapses then (database clock)
    Column("node", String(64), nullable=True),  # the node that runs or ran it
    Column("owner", String(40), nullable=True),  # users.id of the submitter; None: no accounts then
    Column("model", String(200), nullable=True),  # the model id asked for; None: the default model
    Column("device", String(32), nullable=True),  # the device class asked for (CPU, GPU, NPU); None: any
)
Index("jobs_claim_order", jobs_table.c.status, jobs_table.c.priority, jobs_table.c.seq)
Index("jobs_leases", jobs_table.c.status, jobs_table.c.lease_expires_at)
Index("jobs_owner_status", jobs_table.c.owner, jobs_table.c.status)


def claim_filters(models: Sequence[str | None] | None, devices: Sequence[str] | None) -> list[Any]:
    """The WHERE terms that keep a claim to the jobs this worker can run."""
    c, terms = jobs_table.c, []
    if models is not None:
        named = [m for m in models if m is not None]
        terms.append(or_(c.model.in_(named), c.model.is_(None)) if None in models else c.model.in_(named))
    if devices is not None:
        terms.append(or_(c.device.is_(None), c.device.in_(list(devices))))
    return terms


def affinity_pick(conn: Any, filters: list[Any], prefer_model: str | None, max_skips: int, max_wait: float,
                  now: float) -> str | None:
    """The queued job to run instead of the head of the queue because its model is loaded, or None.

    The rule (README "Models"): among queued jobs of the head's priority, the oldest one for the loaded
    model runs first, unless the head has already been passed by max_skips later jobs of its priority
    (counted from its submission) or has waited max_wait seconds; then the head runs, whatever its model.
    Jobs of a higher priority always come first.
    """
    c = jobs_table.c
    if prefer_model is None or max_skips <= 0:
        return None
    queued = (c.status == "queued", *filters)
    head = conn.execute(select(c.id, c.model, c.priority, c.seq, c.created_at).where(*queued)
                        .order_by(c.priority.desc(), c.seq.asc()).limit(1)).first()
    if head is None or head.model in (None, prefer_model) or now - head.created_at >= max_wait:
        return None
    passed = conn.execute(select(func.count()).where(
        c.priority == head.priority, c.seq > head.seq, c.started_at.is_not(None),
        c.started_at >= head.created_at)).scalar() or 0
    if passed >= max_skips:
        return None
    found = conn.execute(select(c.id).where(*queued, c.priority == head.priority, c.model == prefer_model)
                         .order_by(c.seq.asc()).limit(1)).scalar()
    return str(found) if found else None
