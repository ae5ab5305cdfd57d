"""Bringing the engine up in the background: find or download the model, then compile it.

The server answers from the first second; /health tells how far loading got and why it is not ready.
The default model is loaded at start-up; other models are loaded by the worker when a job asks for
one (`engine_for`), through the engine pool (sdedge/engine/pool.py), which keeps the loaded models
under MAX_LOADED_MODELS and MODEL_MEMORY_BUDGET.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from sdedge import model_files
from sdedge.config import Settings
from sdedge.engine.factory import EngineFactory, EngineSpec, build_engine
from sdedge.engine.mock import MockEngine
from sdedge.engine.lora_state import LoraPolicy
from sdedge.engine.params import Engine, GenerationParams
from sdedge.engine.pool import EnginePool, LoadReport, rss_bytes
from sdedge.hybrid_int8 import int8_activations
from sdedge.errors import ModelError, ModelNotReady, SdedgeError
from sdedge.model_library import ModelEntry, ModelLibrary

log = logging.getLogger(__name__)


class LoadState(str, Enum):
    """Where the engine is in its start-up."""

    STARTING = "starting"
    DOWNLOADING = "downloading"
    COMPILING = "compiling"
    READY = "ready"
    MISSING = "missing"
    FAILED = "failed"

    @property
    def dead_end(self) -> bool:
        """True when loading ended without an engine: nothing will run until the settings change."""
        return self in (LoadState.MISSING, LoadState.FAILED)


@dataclass(frozen=True)
class LoadRecord:
    """One model load: which model, how it ended (ready, missing, failed) and how long it took."""

    model: str
    outcome: str
    seconds: float


class EngineLoader:
    """Owns the engine and the story of how it was (or was not) loaded."""

    def __init__(self, settings: Settings, device: str | None = None, library: ModelLibrary | None = None,
                 engine_factory: EngineFactory = build_engine) -> None:
        self.settings = settings
        self.engine_factory = engine_factory  # builds every OpenVINO engine (sdedge/engine/factory.py)
        self.device = device or settings.device_list[0]  # the device this loader compiles for (one worker's)
        self.library = library or ModelLibrary(settings)
        self.pool = EnginePool(settings.max_loaded_models, settings.model_memory_budget_mb * 1024 * 1024)
        self.startup_model: str | None = None  # the model loaded at start-up (the default then)
        self.state = LoadState.STARTING
        self.reason: str | None = "starting up"
        self.download_progress: dict[str, int] | None = None
        self.model_path: str | None = None
        self.load_history: list[LoadRecord] = []  # every load of this process, for /metrics
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Load in a daemon thread, so the HTTP server is up (and /health answers) meanwhile."""
        self._thread = threading.Thread(target=self._load, name=f"sdedge-loader-{self.device}", daemon=True)
        self._thread.start()

    def load_now(self) -> Engine:
        """Load in the calling thread (CLI use) and return the engine or raise why not."""
        self._load()
        return self.engine()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading ended (ready or not); True when it ended in time."""
        return self._ready.wait(timeout)

    def engine(self) -> Engine:
        """The engine used last (the start-up one at first), or ModelNotReady with the reason."""
        engine = self.pool.most_recent() if self.ready else None
        if engine is None:
            raise ModelNotReady(self.reason or "no model is loaded", {"state": self.state.value})
        return engine

    def check_ready(self) -> None:
        """ModelNotReady with the reason unless the start-up load succeeded (models then load on demand)."""
        if not self.ready:
            raise ModelNotReady(self.reason or "model is not ready", {"state": self.state.value})

    def engine_or_none(self) -> Engine | None:
        """The engine used last, else None (for status reports that must not raise)."""
        return self.pool.most_recent()

    def engine_for(self, model_id: str | None, report: LoadReport | None = None) -> Engine:
        """The engine of model_id (None: the default model), loaded (and downloaded) first when need be."""
        if not self.ready:
            raise ModelNotReady(self.reason or "model is not ready", {"state": self.state.value})
        wanted = model_id or self.library.default_id()
        return self.pool.get(wanted, self._build_model, report)

    def local_model_ids(self) -> list[str]:
        """The library's models this node can run: all of them when it may download (or mocks), else the installed."""
        fetch = self.settings.use_mocks or self.settings.auto_download_models
        return [m.id for m in self.library.models() if fetch or m.installed]

    def model_name(self) -> str:
        """Short name of the default model, for image metadata and the A1111 options."""
        return self.library.default_id()

    def supports_image_inputs(self, model_id: str | None = None) -> bool:
        """Whether model_id's engine (None: the one used last) takes input images (not loaded: assume it does)."""
        engine = self.pool.engine(model_id) if model_id else self.pool.most_recent()
        return engine is None or engine.supports_image_inputs

    @property
    def ready(self) -> bool:
        """True once an engine can serve requests."""
        return self.state is LoadState.READY

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            started, before = time.perf_counter(), rss_bytes()
            engine = self._build_engine()
            if self.settings.warmup:
                self._warm_up(engine)
            self.startup_model = self.library.default_id()  # the pool holds the engine: no other reference
            self.pool.put(self.startup_model, engine, max(0, rss_bytes() - before), time.perf_counter() - started)
            self._set(LoadState.READY, None)
        except _ModelMissing as exc:
            self._set(LoadState.MISSING, str(exc))
        except SdedgeError as exc:
            self._set(LoadState.FAILED, exc.message)
        except Exception as exc:  # noqa: BLE001 - report any load failure through /health
            log.exception("loading the model failed")
            self._set(LoadState.FAILED, f"loading the model failed: {exc}")
        finally:
            self.load_history.append(LoadRecord(self.startup_model or self.library.default_id(), self.state.value,
                                                time.perf_counter() - started))
            self._ready.set()

    def _build_engine(self) -> Engine:
        if self.settings.use_mocks:
            return MockEngine(self.device)
        default = self.library.get(self.library.default_id())
        if default.source != "configured":  # the A1111 options chose another default: load that one
            return self._build_model(default.id, lambda phase, fraction: None)
        path = model_files.resolve_model(self.settings)
        if path is None:
            problem = model_files.model_problem(self.settings) or "model is not available"
            if self.settings.model_is_local or not self.settings.auto_download_models:
                raise _ModelMissing(problem)
            self._set(LoadState.DOWNLOADING, f"downloading {self.settings.stable_diffusion_repo_id}")
            path = model_files.download_model(self.settings, show_progress=False, on_progress=self._on_download)
        self.model_path = str(path)
        self._set(LoadState.COMPILING, f"compiling the model for {self.device}")
        return self._compile(path, default.id)

    def _compile(self, path: Path, model_id: str) -> Engine:
        return self.engine_factory(EngineSpec(
            path,
            self.device,
            properties=self.settings.ov_properties(model_id),  # a compile cache per model
            fast_decoder=self.settings.fast_decoder,
            lora_dir=self.settings.loras_dir if self.settings.lora_enabled else None,
            lora_cache_size=self.settings.lora_cache_size,
            lora_coverage=self.settings.lora_coverage,
            lora_policy=LoraPolicy(self.settings.lora_preload, self.settings.lora_release_after),
            static_cache_size=self.settings.static_pipeline_cache_size,
            tiny_previews=self.settings.preview_decoder == "tiny" and self.settings.preview_every_steps > 0,
            cpu_static=self.settings.cpu_static_shapes == "true"
            or (self.settings.cpu_static_shapes == "auto" and int8_activations(path)),
        ))

    def _build_model(self, model_id: str, report: LoadReport) -> Engine:
        """Build the engine of one library model (the pool calls this for a job), recorded in load_history."""
        if self.settings.use_mocks:
            return MockEngine(self.device)
        started, outcome = time.perf_counter(), "failed"
        try:
            engine = self._build_library_model(model_id, report)
            outcome = "ready"
            return engine
        finally:
            self.load_history.append(LoadRecord(model_id, outcome, time.perf_counter() - started))

    def _build_library_model(self, model_id: str, report: LoadReport) -> Engine:
        entry = self.library.get(model_id)
        if not entry.installed:
            self._download_for_job(entry, report)
            entry = self.library.get(model_id)
        report("loading model", None)
        try:
            return self._compile(entry.folder, entry.id)
        except SdedgeError:
            raise
        except Exception as exc:  # noqa: BLE001 - a model that will not load fails its job with the reason
            log.exception("loading model %s failed", entry.id)
            raise ModelError(f"loading model {entry.id} from {entry.folder} failed: {exc}") from exc

    def _download_for_job(self, entry: ModelEntry, report: LoadReport) -> None:
        if entry.problem or entry.repo_id is None or not self.settings.auto_download_models:
            why = entry.problem or f"model {entry.id} is not installed"
            raise ModelError(f"{why}: download it first (POST /models/{entry.id}/download or `sdedge models pull "
                             f"{entry.id}`)")
        report("downloading model", 0.0)
        model_files.download_model(self.library.hub_settings(entry), show_progress=False,
                                   on_progress=lambda done, total: report("downloading model",
                                                                          done / total if total else None))

    def _warm_up(self, engine: Engine) -> None:
        """One step at the default size: first-inference allocations (and static compiles) happen now."""
        self._set(LoadState.COMPILING, "warming up")
        size = self.settings.default_size
        engine.generate(GenerationParams("", "", size, size, 1, self.settings.default_guidance_scale,
                                         self.settings.default_sampler, 0))

    def _on_download(self, done: int, total: int) -> None:
        self.download_progress = {"downloaded_bytes": done, "total_bytes": total}

    def _set(self, state: LoadState, reason: str | None) -> None:
        self.state, self.reason = state, reason
        log.log(logging.WARNING if state in (LoadState.FAILED, LoadState.MISSING) else logging.INFO,
                "engine (%s) %s%s", self.device, state.value, f": {reason}" if reason else "")

    def status(self) -> dict[str, Any]:
        """Loading facts for /health."""
        engine = self.pool.most_recent()
        info: dict[str, Any] = engine.info() if engine else {}
        return {
            "models": self.pool.status(),
            "state": self.state.value,
            "reason": self.reason,
            "model_path": self.model_path,
            "download": self.download_progress,
            "actual_device": engine.device if engine else None,
            **info,
        }


class _ModelMissing(Exception):
    """No usable model, and we may not (or cannot) download one."""

