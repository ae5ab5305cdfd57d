"""The job database: one SQLAlchemy engine per app, the database's own clock, and the table metadata.

SQLite (a file in DATA_DIR) serves one node; PostgreSQL (`DATABASE_URL=postgresql+psycopg://...`) is
the distributed engine a fleet shares. Every time that decides who owns a job (claims, leases,
expiry) is read from the database's clock, so nodes whose clocks disagree still agree on leases.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, create_engine, event, func, literal_column
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

metadata = MetaData()  # the tables as queries see them; their schema is made by sdedge/migrations


def connect(url: str) -> Engine:
    """The engine (connection pool) for a database URL, tuned for surviving restarts."""
    options: dict[str, Any] = {"pool_pre_ping": True}  # a connection from before a restart is replaced
    if url.startswith("postgresql"):
        options["connect_args"] = {"connect_timeout": 5}  # an unreachable server fails fast, not in minutes
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def db_now(engine: Engine) -> ColumnElement[float]:
    """The database's clock as epoch seconds, as an SQL expression."""
    if engine.dialect.name == "postgresql":
        return func.extract("epoch", func.clock_timestamp())  # type: ignore[return-value]
    return literal_column("((julianday('now') - 2440587.5) * 86400.0)")


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL lets readers (HTTP threads) run while the worker writes; busy_timeout waits out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=FULL")  # a finished job survives power loss
    cursor.close()
