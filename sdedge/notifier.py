"""The notifier: wakes whoever waits for job changes (the worker, blocking callers, event streams)."""

from __future__ import annotations

import threading


class Notifier:
    """A version counter with a condition: notify() bumps it, wait() sleeps until it moves."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0

    def notify(self) -> None:
        """Signal that some job changed."""
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def version(self) -> int:
        """A counter that grows at every change."""
        return self._version

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until the counter moves past seen (or timeout); return the new counter."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != seen, timeout)
            return self._version
