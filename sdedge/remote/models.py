"""The remote models of REMOTE_ENGINES, with their credentials and the modes each can run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sdedge.config import RemoteEngine, Settings

STABILITY_URL = "https://api.stability.ai"
STABILITY_SERVICES = ("core", "ultra", "sd3")
# Stability's services and what each can do: core has no image-to-image (its docs), edit/inpaint serves inpainting.
_STABILITY_MODES = {"core": ("text2img", "inpaint"), "ultra": ("text2img", "img2img", "inpaint"),
                    "sd3": ("text2img", "img2img", "inpaint")}
_A1111_MODES = ("text2img", "img2img", "inpaint")  # style transfer is sdedge's own: local models only


@dataclass(frozen=True)
class RemoteModel:
    """One model served by a remote engine."""

    id: str
    name: str
    kind: str  # "a1111" or "stability"
    url: str
    model: str | None  # the remote's own model: an A1111 checkpoint, a Stability service or sd3 model
    timeout: float
    key: str | None = field(default=None, repr=False)
    problem: str | None = None  # why it cannot run (e.g. no API key), or None

    @property
    def modes(self) -> tuple[str, ...]:
        """The generation modes this remote can run."""
        if self.kind == "stability":
            return _STABILITY_MODES[self.stability_service]
        return _A1111_MODES

    @property
    def stability_service(self) -> str:
        """Stability: the generate service (core, ultra, sd3) its model names."""
        wanted = (self.model or "core").lower()
        return wanted if wanted in STABILITY_SERVICES else "sd3"

    def describe(self) -> dict[str, Any]:
        """JSON form for listings and the nodes table (never the key)."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "url": self.url, "model": self.model,
                "modes": list(self.modes), "problem": self.problem}


def remote_models(settings: Settings) -> list[RemoteModel]:
    """Every REMOTE_ENGINES entry as a model (a registry includes these beside the local ones)."""
    return [_model(entry, settings) for entry in settings.remote_engines]


def _model(entry: RemoteEngine, settings: Settings) -> RemoteModel:
    key = entry.key or (os.environ.get(entry.key_env) if entry.key_env else None)
    problem = None
    if entry.kind == "stability":
        key = key or settings.stability_api_key
        if not key:
            where = f"the variable {entry.key_env}" if entry.key_env else "STABILITY_API_KEY"
            problem = f"no Stability AI API key: set {where} (or key/key_env in its REMOTE_ENGINES entry)"
    elif not entry.url:
        problem = "no url: set the AUTOMATIC1111-compatible server's address in its REMOTE_ENGINES entry"
    elif entry.key_env and not key:
        problem = f"the variable {entry.key_env} named by key_env is not set"
    url = entry.url or (STABILITY_URL if entry.kind == "stability" else "")
    return RemoteModel(entry.id, entry.name or entry.id, entry.kind, url, entry.model, entry.timeout, key, problem)
