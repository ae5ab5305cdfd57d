"""Schema migrations (Alembic), run at every start-up under a database lock.

Any number of nodes may start together on an empty or an older database: on PostgreSQL a
transaction-scoped advisory lock lets one of them migrate while the others wait, then find the schema
at head; on SQLite a file lock beside the database does the same between processes. A database made
by sdedge before migrations existed (its `jobs` table but no `alembic_version`) is stamped as the first
revision and upgraded from there. New schema changes are new files in `versions/`.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).resolve().parent
FIRST_REVISION = "0001"
_ADVISORY_LOCK_KEY = 0x5DED6E  # any constant: every sdedge node takes the same lock


def upgrade_database(engine: Engine) -> None:
    """Bring the database's schema to the newest revision (a no-op when it is there)."""
    with _sqlite_file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
        config = alembic_config(conn)
        tables = set(inspect(conn).get_table_names())
        if "jobs" in tables and "alembic_version" not in tables:
            command.stamp(config, FIRST_REVISION)  # made by create_all before migrations existed
        command.upgrade(config, "head")


def alembic_config(conn: Connection) -> Config:
    """Alembic's configuration for this package's migrations, bound to conn."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = conn
    return config


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield
