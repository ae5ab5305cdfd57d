"""Migration 0002 (accounts): a job database from before it keeps its jobs, ownerless, and gains the
owner column, its index and the users and api_tokens tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sdedge.job_store import JobStore

# The jobs table as sdedge created it before accounts existed (no owner column).
OLD_JOBS_TABLE = """
CREATE TABLE jobs (
    id VARCHAR(40) NOT NULL PRIMARY KEY, type VARCHAR(32) NOT NULL, status VARCHAR(16) NOT NULL,
    priority INTEGER NOT NULL, seq FLOAT NOT NULL, idempotency_key VARCHAR(200) UNIQUE, request TEXT NOT NULL,
    params TEXT NOT NULL, result TEXT, error TEXT, progress_step INTEGER NOT NULL, progress_total INTEGER NOT NULL,
    preview VARCHAR(260), files TEXT NOT NULL, bytes INTEGER NOT NULL, attempts INTEGER NOT NULL,
    cancel_requested BOOLEAN NOT NULL, worker VARCHAR(120), created_at FLOAT NOT NULL, started_at FLOAT,
    finished_at FLOAT, heartbeat_at FLOAT
)"""


def test_an_old_database_gets_the_owner_column_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    with sqlite3.connect(path) as db:
        db.execute(OLD_JOBS_TABLE)
        db.execute("INSERT INTO jobs VALUES ('job-0123456789abcdef', 'text2img', 'succeeded', 0, 1.0, NULL, '{}', "
                   "'{}', NULL, NULL, 3, 3, NULL, '[]', 0, 1, 0, NULL, 1.0, 1.0, 2.0, NULL)")
    store = JobStore(f"sqlite:///{path}")
    old = store.get("job-0123456789abcdef")
    assert old.owner is None and old.status.value == "succeeded"
    new, _ = store.add("text2img", {}, {"steps": 2}, owner="user-1")
    assert store.get(new.id).owner == "user-1"
    assert [j.id for j in store.list_jobs(None, 10, None, owner="user-1", any_owner=False)] == [new.id]
    with sqlite3.connect(path) as db:
        indexes = {row[1] for row in db.execute("PRAGMA index_list(jobs)")}
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "jobs_owner_status" in indexes and {"users", "api_tokens", "alembic_version"} <= tables
    JobStore(f"sqlite:///{path}")  # a second start finds nothing to add
