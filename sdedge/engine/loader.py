"""Bringing the engine up in the background: find or download the model, then compile it.

The server answers from the first second; /health tells how far loading got and why it is not ready.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sdedge import model_files
from sdedge.config import Settings
from sdedge.engine.mock import MockEngine
from sdedge.engine.openvino import OpenVINOEngine
from sdedge.engine.params import Engine, GenerationParams
from sdedge.errors import ModelNotReady, SdedgeError

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

    def __init__(self, settings: Settings, device: str | None = None) -> None:
        self.settings = settings
        self.device = device or settings.device_list[0]  # the device this loader compiles for (one worker's)
        self.state = LoadState.STARTING
        self.reason: str | None = "starting up"
        self.download_progress: dict[str, int] | None = None
        self.model_path: str | None = None
        self._engine: Engine | None = None
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
        """The engine, or ModelNotReady with the reason."""
        if self._engine is None:
            raise ModelNotReady(self.reason or "model is not ready", {"state": self.state.value})
        return self._engine

    def engine_or_none(self) -> Engine | None:
        """The engine when loaded, else None (for status reports that must not raise)."""
        return self._engine

    def model_name(self) -> str:
        """Short model name for image metadata: the repo or folder's last part."""
        return self.settings.stable_diffusion_repo_id.rstrip("/\\").split("/")[-1]

    def supports_image_inputs(self) -> bool:
        """Whether the loaded engine can take input images (before loading: assume it can)."""
        return self._engine is None or self._engine.supports_image_inputs

    @property
    def ready(self) -> bool:
        """True once an engine can serve requests."""
        return self.state is LoadState.READY

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            engine = self._build_engine()
            if self.settings.warmup:
                self._warm_up(engine)
            self._engine = engine
            self._set(LoadState.READY, None)
        except _ModelMissing as exc:
            self._set(LoadState.MISSING, str(exc))
        except SdedgeError as exc:
            self._set(LoadState.FAILED, exc.message)
        except Exception as exc:  # noqa: BLE001 - report any load failure through /health
            log.exception("loading the model failed")
            self._set(LoadState.FAILED, f"loading the model failed: {exc}")
        finally:
            self.load_history.append(LoadRecord(self.settings.stable_diffusion_repo_id, self.state.value,
                                                time.perf_counter() - started))
            self._ready.set()

    def _build_engine(self) -> Engine:
        if self.settings.use_mocks:
            return MockEngine(self.device)
        path = model_files.resolve_model(self.settings)
        if path is None:
            problem = model_files.model_problem(self.settings) or "model is not available"
            if self.settings.model_is_local or not self.settings.auto_download_models:
                raise _ModelMissing(problem)
            self._set(LoadState.DOWNLOADING, f"downloading {self.settings.stable_diffusion_repo_id}")
            path = model_files.download_model(self.settings, show_progress=False, on_progress=self._on_download)
        self.model_path = str(path)
        self._set(LoadState.COMPILING, f"compiling the model for {self.device}")
        return OpenVINOEngine(
            path,
            self.device,
            properties=self.settings.ov_properties(),
            fast_decoder=self.settings.fast_decoder,
            lora_dir=self.settings.loras_dir if self.settings.lora_enabled else None,
            lora_cache_size=self.settings.lora_cache_size,
            lora_coverage=self.settings.lora_coverage,
            static_cache_size=self.settings.static_pipeline_cache_size,
        )

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
        info: dict[str, Any] = self._engine.info() if self._engine else {}
        return {
            "state": self.state.value,
            "reason": self.reason,
            "model_path": self.model_path,
            "download": self.download_progress,
            "actual_device": self._engine.device if self._engine else None,
            **info,
        }


class _ModelMissing(Exception):
    """No usable model, and we may not (or cannot) download one."""

