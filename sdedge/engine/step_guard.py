"""genai's step callback, guarded: every step reported, no Python exception crossing into C++."""

from __future__ import annotations

from typing import Any

import numpy as np

from sdedge.engine.params import StepCallback, StepEvent

__all__ = ["CallbackGuard", "latent_array"]


class CallbackGuard:
    """genai's step callback: reports each step, and keeps every Python exception on this side.

    An exception escaping into genai's C++ worker thread aborts the whole process (pybind11's
    error_already_set), so anything on_step raises is held, the run is stopped, and it is raised
    again once generate() returned.
    """

    def __init__(self, on_step: StepCallback, index: int, num_images: int) -> None:
        self.on_step, self.index, self.num_images = on_step, index, num_images
        self.stopped = False
        self.error: BaseException | None = None
        self.latent: np.ndarray | None = None  # the last step's, for a partial image when the run stops

    def __call__(self, step: int, num_steps: int, latent: Any) -> bool:
        if self.stopped:
            return True
        try:
            event = StepEvent(self.index, self.num_images, step + 1, num_steps, latent_array(latent))
            self.latent = event.latent
            self.stopped = bool(self.on_step(event))
        except BaseException as exc:  # noqa: BLE001 - nothing may cross into C++
            self.error, self.stopped = exc, True
        return self.stopped

    def reraise(self) -> None:
        """Raise what on_step raised during the run, if anything."""
        if self.error is not None:
            raise self.error


def latent_array(latent: Any) -> np.ndarray | None:
    """A copy of genai's latent tensor as numpy, or None when it cannot be read."""
    try:
        return np.array(latent.data, copy=True)
    except Exception:  # noqa: BLE001 - previews are optional; never fail a step for one
        return None
