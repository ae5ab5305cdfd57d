"""Files every node can serve: when the job database is shared, PNGs and stored inputs live in it too.

Chosen by measurement over a folder the nodes would have to share (see docs/FLEET.md): an edge box
has no NFS server to set up, PostgreSQL is already there, and a 512x512 PNG costs a few milliseconds to
write and read, next to seconds of generation. Each node keeps what it wrote or fetched in its own
folder as a cache; deleting and pruning remove the database rows, so every node stops serving them.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, LargeBinary, String, Table, delete, select, update
from sqlalchemy.engine import Engine

from sdedge.database import db_now, metadata

files_table = Table(
    "files",
    metadata,
    Column("name", String(210), primary_key=True),
    Column("job_id", String(40), nullable=True, index=True),
    Column("kind", String(16), nullable=False),  # image, preview, input
    Column("content", LargeBinary, nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)


def job_of(filename: str) -> str | None:
    """The job a file name belongs to (job-<hex>-0.png, job-<hex>-preview.png), if any."""
    parts = filename.split("-")
    return "-".join(parts[:2]) if len(parts) >= 3 and parts[0] == "job" else None


class SharedFiles:
    """The files table."""

    def __init__(self, engine: Engine) -> None:
        self.db = engine

    def put(self, name: str, content: bytes, kind: str) -> None:
        """Store (or replace: previews are rewritten every few steps) one file."""
        values = {"content": content, "size": len(content), "kind": kind, "created_at": db_now(self.db)}
        with self.db.begin() as conn:
            if not conn.execute(update(files_table).where(files_table.c.name == name).values(**values)).rowcount:
                conn.execute(files_table.insert().values(name=name, job_id=job_of(name), **values))

    def get(self, name: str) -> bytes | None:
        """One file's bytes, or None."""
        with self.db.connect() as conn:
            content = conn.execute(select(files_table.c.content).where(files_table.c.name == name)).scalar()
        return bytes(content) if content is not None else None

    def delete(self, names: list[str]) -> None:
        """Remove files for every node."""
        if names:
            with self.db.begin() as conn:
                conn.execute(delete(files_table).where(files_table.c.name.in_(names)))

    def existing(self, names: list[str]) -> set[str]:
        """Which of names are still stored."""
        if not names:
            return set()
        with self.db.connect() as conn:
            return set(conn.execute(select(files_table.c.name).where(files_table.c.name.in_(names))).scalars())
