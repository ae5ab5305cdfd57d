"""Loaded engines shared by the apps of one test process (conftest's start_app lends them).

Loading the tiny fixture model from the compile cache takes 1.5-2 s, several times what the rest of an app's
start costs, and most tests start an app of their own. So the engines apps build are kept on a shelf when
their app stops, and the next app whose loader asks for an equal spec (same fixture model, settings and
compile cache) gets one of them instead of a new one. One engine serves one live app at a time.

An engine goes back on the shelf only in the state a new one starts in, so no test sees what another did:
- not closed (a pool that unloaded it, on a model switch or a memory budget, closed it for good: only the
  engines the app's pools still hold go back);
- plain pipelines (a job with a LoRA leaves them LoRA-ready, with adapter state inside genai's pipelines,
  until the next LoRA-free job rebuilds them plain: such an engine is dropped).
Only the plain CPU path on the read-only fixture models is shared: a pretend GPU (tests that patch the
device list), LORA_PRELOAD (LoRA-ready from the start), tiny live previews (their decoder keeps a timing
estimate from job to job) and model folders a test made or changed get engines of their own, and so does
every test marked `fresh_engine` (loading, unloading and switching tests).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from sdedge.engine.factory import EngineSpec, build_engine
from sdedge.engine.loader import EngineLoader
from sdedge.engine.params import Engine

FIXTURES = (Path(__file__).parent / "fixtures").resolve()
MAX_IDLE = 6  # idle engines kept (about 50 MB each on the tiny models); the least recently returned go first

Key = tuple[object, ...]


def shelf_key(spec: EngineSpec) -> Key | None:
    """What must be equal for two apps to share an engine; None: this spec is never shared."""
    model = Path(spec.model_path).resolve()
    if spec.device != "CPU" or spec.lora_policy.preload or spec.tiny_previews or not model.is_relative_to(FIXTURES):
        return None
    properties = tuple(sorted((name, repr(value)) for name, value in spec.properties.items()))
    # lora_dir itself is not part of it: the engine reads LoRA files by name there, and is re-pointed on loan
    return (model, properties, spec.fast_decoder, spec.lora_dir is not None, spec.lora_cache_size,
            spec.lora_coverage, spec.lora_policy, spec.static_cache_size, spec.cpu_static)


def reusable(engine: Engine) -> bool:
    """True when an open engine is as a new one for its spec would be: plain (LoRA-free) pipelines."""
    return not engine.info().get("lora_ready", False)


def held_engines(loaders: Iterable[EngineLoader]) -> list[Engine]:
    """The engines the loaders' pools still hold: a pool closes every engine it unloads, and only those."""
    return [engine for loader in loaders for model in loader.pool.loaded_ids()
            if (engine := loader.pool.engine(model)) is not None]


class EngineShelf:
    """Idle engines by spec, handed out through one Lender per app."""

    def __init__(self, max_idle: int = MAX_IDLE) -> None:
        self.max_idle = max_idle
        self._idle: OrderedDict[int, tuple[Key, Engine]] = OrderedDict()  # by id(engine), oldest first
        self.built = self.reused = 0  # for the summary at the end of the run

    def lender(self) -> Lender:
        """A new app's engine factory."""
        return Lender(self)

    def take(self, spec: EngineSpec) -> tuple[Key | None, Engine]:
        """An idle engine for spec (newest first), else a newly built one."""
        key = shelf_key(spec)
        if key is not None:
            for ident, (idle_key, engine) in reversed(self._idle.items()):
                if idle_key == key:
                    del self._idle[ident]
                    if spec.lora_dir is not None:
                        engine.read_loras_from(spec.lora_dir)  # type: ignore[attr-defined]
                    self.reused += 1
                    return key, engine
        self.built += 1
        return key, build_engine(spec)

    def put(self, key: Key | None, engine: Engine) -> None:
        """Keep a stopped app's open engine for the next app, unless it is not as new any more."""
        if key is None or not reusable(engine):
            return
        self._idle[id(engine)] = (key, engine)
        while len(self._idle) > self.max_idle:
            self._idle.popitem(last=False)

    def __len__(self) -> int:
        """How many engines are idle on the shelf."""
        return len(self._idle)

    def clear(self) -> None:
        """Drop every idle engine."""
        self._idle.clear()


class Lender:
    """One app's engine factory: engines from the shelf, given back once the app stopped."""

    def __init__(self, shelf: EngineShelf) -> None:
        self.shelf = shelf
        self.lent: list[tuple[Key | None, Engine]] = []

    def __call__(self, spec: EngineSpec) -> Engine:
        key, engine = self.shelf.take(spec)
        self.lent.append((key, engine))
        return engine

    def give_back(self, held: Iterable[Engine]) -> None:
        """Return the engines this app got that its pools still hold (`held_engines`; the others were closed):
        call only after the app's workers stopped."""
        still = {id(engine) for engine in held}
        while self.lent:
            key, engine = self.lent.pop()
            if id(engine) in still:
                self.shelf.put(key, engine)
