"""Waiting between retries while a dependency (the job database, a remote engine) stays away."""

from __future__ import annotations


class Backoff:
    """Waits that double from 0.25 s up to 10 s while a dependency stays away."""

    def __init__(self, first: float = 0.25, most: float = 10.0) -> None:
        self.first, self.most, self._next = first, most, first

    def next(self) -> float:
        """The wait before the next try."""
        wait, self._next = self._next, min(self.most, self._next * 2)
        return wait

    def reset(self) -> None:
        """Back to the first, short wait."""
        self._next = self.first
