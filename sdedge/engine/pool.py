"""The engine pool: loaded models keyed by model id, kept under MAX_LOADED_MODELS and MODEL_MEMORY_BUDGET.

Loading a model that is not loaded first unloads least-recently-used ones until the new one fits
(so a switch under MAX_LOADED_MODELS=1 holds one model plus the one being loaded, never two
loaded), then measures what the load cost: the process's resident memory (RSS) after the load minus
before it. The budget is checked against those measured figures; a model never loaded before is
assumed to cost what the largest measured one did. Unloading drops every pipeline, runs the garbage
collector and asks glibc to hand freed heap pages back (`malloc_trim`), so memory really returns.
Only the worker thread loads and unloads; the pool's lock keeps readers (/health, /models) consistent.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import resource
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sdedge.engine.params import Engine

log = logging.getLogger(__name__)

# What a load reports while it runs: phase ("downloading model", "loading model") and a fraction or None.
LoadReport = Callable[[str, float | None], None]
Builder = Callable[[str, LoadReport], Engine]


def rss_bytes() -> int:
    """The process's resident memory now (Linux /proc; elsewhere the peak, the best the OS tells)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize()
    except OSError:
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """The process's peak resident memory so far."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def release_memory() -> None:
    """Collect garbage and return freed heap pages to the OS (glibc only; elsewhere a no-op)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@dataclass
class Loaded:
    """One loaded model."""

    model_id: str
    engine: Engine
    rss_delta: int  # bytes the load added to the process (measured)
    load_seconds: float
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)


class EnginePool:
    """Engines by model id, least recently used first out."""

    def __init__(self, max_loaded: int, budget_bytes: int = 0) -> None:
        self.max_loaded, self.budget_bytes = max_loaded, budget_bytes
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()
        self._lock = threading.RLock()
        self._load_seconds: dict[str, float] = {}  # last load time per model, for a loading job's progress
        self._costs: dict[str, int] = {}  # measured RSS growth per model
        self.loading: str | None = None  # the model being loaded now
        self.switches = 0
        self.last_unload: dict[str, Any] | None = None

    def get(self, model_id: str, build: Builder, report: LoadReport | None = None) -> Engine:
        """The engine for model_id, loading it (after unloading what must go) when it is not loaded."""
        with self._lock:
            if model_id in self._loaded:
                item = self._loaded[model_id]
                item.last_used = time.time()
                self._loaded.move_to_end(model_id)
                return item.engine
            self.loading = model_id  # from the first unload on: the switch is under way
            try:
                self._make_room(model_id)
            except BaseException:
                self.loading = None
                raise
        try:
            started, before = time.perf_counter(), rss_bytes()
            engine = build(model_id, report or (lambda phase, fraction: None))
            seconds, delta = time.perf_counter() - started, max(0, rss_bytes() - before)
        finally:
            self.loading = None
        self.put(model_id, engine, delta, seconds)
        return engine

    def put(self, model_id: str, engine: Engine, rss_delta: int, load_seconds: float) -> None:
        """Record an engine loaded elsewhere (the start-up load) as loaded now."""
        with self._lock:
            if self._loaded:
                self.switches += 1
            self._loaded[model_id] = Loaded(model_id, engine, rss_delta, load_seconds)
            self._costs[model_id], self._load_seconds[model_id] = rss_delta, load_seconds
            log.info("model %s loaded in %.1f s (+%.0f MB resident)", model_id, load_seconds, rss_delta / 2**20)

    def expected_load_seconds(self, model_id: str) -> float | None:
        """How long the last load of model_id took (None: never loaded in this process)."""
        return self._load_seconds.get(model_id)

    def _make_room(self, model_id: str) -> None:
        """Unload least-recently-used models until one more fits the count and the memory budget."""
        while len(self._loaded) >= self.max_loaded:
            self.unload(next(iter(self._loaded)))
        if self.budget_bytes:
            cost = self._costs.get(model_id) or max(self._costs.values(), default=0)
            while self._loaded and self.resident_cost() + cost > self.budget_bytes:
                self.unload(next(iter(self._loaded)))

    def resident_cost(self) -> int:
        """Measured memory of the models loaded now."""
        return sum(item.rss_delta for item in self._loaded.values())

    def unload(self, model_id: str) -> bool:
        """Drop a model's pipelines and give the memory back; False when it was not loaded."""
        with self._lock:
            item = self._loaded.pop(model_id, None)
            if item is None:
                return False
            before = rss_bytes()
            close = getattr(item.engine, "close", None)
            if callable(close):
                close()
            del item
            release_memory()
            freed = max(0, before - rss_bytes())
            self.last_unload = {"model": model_id, "freed_bytes": freed, "at": time.time()}
            log.info("model %s unloaded (%.0f MB returned)", model_id, freed / 2**20)
            return True

    def unload_all(self) -> None:
        """Unload every model (shutdown, tests)."""
        for model_id in list(self._loaded):
            self.unload(model_id)

    def engine(self, model_id: str) -> Engine | None:
        """The loaded engine of model_id, or None."""
        item = self._loaded.get(model_id)
        return item.engine if item else None

    def loaded_ids(self) -> list[str]:
        """Loaded model ids, least recently used first."""
        return list(self._loaded)

    def most_recent(self) -> Engine | None:
        """The engine used last, or None."""
        with self._lock:
            return next(reversed(self._loaded.values())).engine if self._loaded else None

    def most_recent_id(self) -> str | None:
        """The model used last, or None."""
        with self._lock:
            return next(reversed(self._loaded)) if self._loaded else None

    def status(self) -> dict[str, Any]:
        """Loaded models with their measured memory, for /health and /models."""
        with self._lock:
            loaded = [{"model": i.model_id, "rss_delta_bytes": i.rss_delta, "load_seconds": round(i.load_seconds, 3),
                       "last_used": i.last_used} for i in self._loaded.values()]
        return {"loaded": loaded, "loading": self.loading, "max_loaded_models": self.max_loaded,
                "memory_budget_bytes": self.budget_bytes or None, "resident_cost_bytes": self.resident_cost(),
                "rss_bytes": rss_bytes(), "switches": self.switches, "last_unload": self.last_unload}
