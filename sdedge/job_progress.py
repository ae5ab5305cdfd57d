"""The running job's live progress, kept in memory for fast reads, and the model-load phase before its steps.

A job whose model is not loaded shows `phase` "loading model" (or "downloading model") with a progress:
a download's measured bytes, or for a compile the elapsed share of that model's last load time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sdedge.engine.loader import EngineLoader
from sdedge.engine.params import Engine


@dataclass
class Progress:
    """Live state of the running job, kept in memory for fast reads."""

    job_id: str
    total: int
    started: float = field(default_factory=time.monotonic)
    step: int = 0
    fraction: float = 0.0
    preview: str | None = None
    model: str | None = None
    phase: str = "generating"  # or "loading model" / "downloading model" while the job's model is brought in
    phase_fraction: float | None = None  # the load's own progress (a download's bytes; a compile's expected time)
    phase_started: float = field(default_factory=time.monotonic)
    phase_expected: float | None = None  # seconds the last load of this model took

    def load_progress(self) -> float | None:
        """How far the model load is: measured for a download, from the last load's time for a compile."""
        if self.phase == "generating":
            return None
        if self.phase_fraction is not None or not self.phase_expected:
            return self.phase_fraction
        return round(min(0.99, (time.monotonic() - self.phase_started) / self.phase_expected), 3)

    def eta_seconds(self) -> float | None:
        """Remaining time, extrapolated from the steps done so far."""
        if self.fraction <= 0:
            return None
        elapsed = time.monotonic() - self.started
        return round(elapsed * (1 - self.fraction) / self.fraction, 2)


def engine_for_job(loader: EngineLoader, progress: Progress | None, notify: Callable[[], None],
                   model: str | None) -> Engine:
    """The engine of a job's model (None: the default); while it loads, progress shows the loading phase."""
    model_id = model or loader.library.default_id()

    def report(phase: str, fraction: float | None) -> None:
        if progress is not None:
            if phase != progress.phase:
                progress.phase_started = time.monotonic()
            progress.phase, progress.phase_fraction = phase, fraction
            progress.phase_expected = loader.pool.expected_load_seconds(model_id)
        notify()

    if loader.pool.engine(model_id) is None:
        report("loading model", None)
    engine = loader.engine_for(model_id, report)
    if progress is not None:
        progress.phase, progress.phase_fraction = "generating", None
        progress.started = time.monotonic()  # the ETA counts denoising steps, not the load
    notify()
    return engine


def phase_of(running: bool, live: Progress | None) -> dict[str, Any] | None:
    """What a running job is doing: loading its model (with progress) or generating; None when not running."""
    if live is not None:
        return {"name": live.phase, "progress": live.load_progress()}
    return {"name": "generating", "progress": None} if running else None
