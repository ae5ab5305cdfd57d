"""What a worker needs from around it: where its engine comes from, which jobs it may claim, the node's duties."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sdedge.engine.params import Engine


class EngineSource(Protocol):
    """Where a worker's engine comes from: a local device's loader, or a remote engine."""

    @property
    def ready(self) -> bool:
        """True once the engine can run jobs."""
        ...

    def engine(self) -> Engine:
        """The engine, or ModelNotReady with the reason."""
        ...

    def engine_or_none(self) -> Engine | None:
        """The engine when there is one."""
        ...

    def model_name(self) -> str:
        """The model's short name, for image metadata."""
        ...

    def describe(self) -> dict[str, Any]:
        """What this source is, for the nodes table (device or remote engine, state)."""
        ...


@dataclass(frozen=True)
class ClaimScope:
    """The jobs a worker may claim: of these models (None: the default model) and, when given, these device
    classes (a job that asked for none goes to any worker)."""

    models: list[str | None]
    devices: list[str] | None


class NodeDuties(Protocol):
    """What the node's workers share between jobs: crash recovery once, then housekeeping."""

    def run(self) -> None:
        """Do what is due (any worker's thread may call it; one does the work)."""
        ...

    def beat_now(self) -> None:
        """Record the node's state at once."""
        ...
