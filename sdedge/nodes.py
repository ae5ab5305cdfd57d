"""The nodes of a fleet: each server's persistent id, and the nodes table every node writes its state to.

A node is one sdedge server process with its own DATA_DIR (its id lives there, so it survives
restarts). Its workers claim jobs as `<node id>:<pid>`; `/health` and `/queue/status` list the nodes
seen within the last few leases.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Float, String, Table, Text, select, update
from sqlalchemy.engine import Engine

from sdedge import __version__
from sdedge.database import db_now, metadata

nodes_table = Table(
    "nodes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("workers", Text, nullable=False),  # JSON list: device, model and current job of each worker
    Column("version", String(40), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

NODE_ID_FILE = "node-id"


def node_id(data_dir: Path) -> str:
    """This node's id: made once and kept in DATA_DIR, so a restart is the same node."""
    path = Path(data_dir) / NODE_ID_FILE
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        made = f"node-{uuid.uuid4().hex[:12]}"
        path.write_text(made + "\n", encoding="utf-8")
        return made


def default_node_name() -> str:
    """The name a node shows when NODE_NAME is not set: the host's."""
    return socket.gethostname()


@dataclass(frozen=True)
class NodeInfo:
    """One node as /health and /queue/status show it."""

    id: str
    name: str
    workers: list[dict[str, Any]]
    version: str
    started_at: float
    last_seen: float
    seconds_since_seen: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"id": self.id, "name": self.name, "workers": self.workers, "version": self.version,
                "started_at": self.started_at, "last_seen": self.last_seen,
                "seconds_since_seen": round(self.seconds_since_seen, 3)}


class NodeRegistry:
    """The nodes table: this node's upserts, every node's reads."""

    def __init__(self, engine: Engine, node: str, name: str) -> None:
        self.db, self.node, self.name = engine, node, name
        self.started_at = time.time()

    def beat(self, workers: list[dict[str, Any]]) -> None:
        """Record that this node is alive, with what each of its workers does."""
        values = {"name": self.name, "workers": json.dumps(workers), "version": __version__,
                  "last_seen": db_now(self.db)}
        with self.db.begin() as conn:
            if not conn.execute(update(nodes_table).where(nodes_table.c.id == self.node).values(**values)).rowcount:
                conn.execute(nodes_table.insert().values(id=self.node, started_at=self.started_at, **values))

    def live(self, within_seconds: float) -> list[NodeInfo]:
        """The nodes seen within the last within_seconds (database clock), this one first."""
        now = db_now(self.db)
        with self.db.connect() as conn:
            rows = conn.execute(select(nodes_table, (now - nodes_table.c.last_seen).label("age"))
                                .where(nodes_table.c.last_seen > now - within_seconds)).mappings().all()
        found = [NodeInfo(r["id"], r["name"], json.loads(r["workers"]), r["version"], r["started_at"], r["last_seen"],
                          float(r["age"])) for r in rows]
        return sorted(found, key=lambda n: (n.id != self.node, n.name))
