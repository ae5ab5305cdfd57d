"""A remote model as a worker's engine source: the engine interface over a remote engine's client."""

from __future__ import annotations

from typing import Any, Protocol

from sdedge.engine.params import GenerationOutput, GenerationParams, ImageInputs, StepCallback, never_stop
from sdedge.errors import ModelNotReady, RemoteEngineError
from sdedge.remote.a1111_client import A1111Client
from sdedge.remote.models import RemoteModel
from sdedge.remote.stability_client import StabilityClient


class RemoteClient(Protocol):
    """What a remote engine's client does."""

    def generate(self, params: GenerationParams, inputs: ImageInputs, on_step: StepCallback) -> GenerationOutput:
        """One job's images."""
        ...

    def close(self) -> None:
        """Close its connections."""
        ...


def client_for(remote: RemoteModel) -> RemoteClient:
    """The client of a remote model's kind."""
    if remote.kind == "stability":
        return StabilityClient(remote)
    return A1111Client(remote)


class RemoteEngine:
    """The engine interface (sdedge.engine.params.Engine) of one remote model."""

    supports_image_inputs = True

    def __init__(self, remote: RemoteModel, client: RemoteClient) -> None:
        self.remote, self.client = remote, client
        self.name = f"remote-{remote.kind}"
        self.requested_device = self.device = "remote"
        self.last_error: str | None = None  # the last job's remote failure, until a job succeeds (for monitors)

    def generate(self, params: GenerationParams, on_step: StepCallback | None = None,
                 inputs: ImageInputs | None = None) -> GenerationOutput:
        """Run the job on the remote."""
        try:
            output = self.client.generate(params, inputs or ImageInputs(), on_step or never_stop)
        except RemoteEngineError as exc:
            self.last_error = exc.message
            raise
        self.last_error = None
        return output

    def info(self) -> dict[str, Any]:
        """Facts for /health."""
        return {"engine": self.name, "remote": self.remote.describe()}


class RemoteSource:
    """Where a remote model's worker gets its engine: ready unless the entry is misconfigured."""

    def __init__(self, remote: RemoteModel, client: RemoteClient | None = None) -> None:
        self.remote = remote
        self._engine = RemoteEngine(remote, client or client_for(remote))

    @property
    def ready(self) -> bool:
        """True when the entry can run jobs (a missing key or url: never)."""
        return self.remote.problem is None

    @property
    def reason(self) -> str | None:
        """Why it cannot run, or None."""
        return self.remote.problem

    def engine(self) -> RemoteEngine:
        """The remote engine, or ModelNotReady with the entry's problem."""
        if self.remote.problem:
            raise ModelNotReady(f"remote model {self.remote.id}: {self.remote.problem}")
        return self._engine

    def engine_or_none(self) -> RemoteEngine | None:
        """The engine when the entry can run."""
        return None if self.remote.problem else self._engine

    def model_name(self) -> str:
        """The remote model's id (image metadata, the nodes table)."""
        return self.remote.id

    def describe(self) -> dict[str, Any]:
        """The worker's source for the nodes table: no device, a remote engine."""
        return {"device": None, "state": "ready" if self.ready else "failed", "reason": self.remote.problem,
                "remote": self.remote.describe(), "last_error": self._engine.last_error}

    def close(self) -> None:
        """Close the client's connections."""
        self._engine.client.close()
