"""Model downloads started from the API: one background thread per model, progress kept for /models and /health.

A download is resumable (huggingface-hub continues what a stopped one left, sdedge/model_files.py),
and its disk space is checked before it starts, against the hub's byte total for the files the
runtime reads: a download that cannot fit is refused with a 507 at once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sdedge import model_files
from sdedge.config import Settings
from sdedge.errors import Conflict, SdedgeError, detail
from sdedge.model_library import ModelEntry, ModelLibrary

log = logging.getLogger(__name__)


@dataclass
class DownloadState:
    """One model's download, as /models shows it."""

    model: str
    state: str = "starting"  # starting, downloading, complete, failed
    downloaded_bytes: int = 0
    total_bytes: int | None = None
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with a percentage."""
        percent = round(100 * self.downloaded_bytes / self.total_bytes, 1) if self.total_bytes else None
        return {"state": self.state, "downloaded_bytes": self.downloaded_bytes, "total_bytes": self.total_bytes,
                "percent": percent, "error": self.error, "started_at": self.started_at,
                "finished_at": self.finished_at}


class ModelDownloads:
    """Background downloads of library models."""

    def __init__(self, settings: Settings, library: ModelLibrary) -> None:
        self.settings, self.library = settings, library
        self._states: dict[str, DownloadState] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def start(self, entry: ModelEntry) -> DownloadState:
        """Start (or resume) entry's download in the background; a running one is returned as it is."""
        if entry.repo_id is None:
            message = f"model {entry.id} is a local folder ({entry.folder}); there is nothing to download"
            raise Conflict(message, detail("model", message, "local_model"))
        with self._lock:
            running = self._threads.get(entry.id)
            if running is not None and running.is_alive():
                return self._states[entry.id]
            hub = self.library.hub_settings(entry)
            total = model_files.remote_total(hub)  # a 4xx/5xx for a repo the hub does not know, before any thread
            model_files.check_disk_space(model_files.hub_model_dir(hub), total,
                                         self.settings.min_free_disk_mb * 1024 * 1024)
            state = DownloadState(entry.id, total_bytes=total)
            self._states[entry.id] = state
            thread = threading.Thread(target=self._run, args=(hub, state), name=f"sdedge-download-{entry.id}",
                                      daemon=True)
            self._threads[entry.id] = thread
            thread.start()
        return state

    def _run(self, hub: Settings, state: DownloadState) -> None:
        def progress(done: int, total: int) -> None:
            state.state, state.downloaded_bytes, state.total_bytes = "downloading", done, total or state.total_bytes

        try:
            model_files.download_model(hub, show_progress=False, on_progress=progress)
            state.state = "complete"
        except SdedgeError as exc:
            state.state, state.error = "failed", exc.message
        except Exception as exc:  # noqa: BLE001 - a download thread reports, never dies silently
            log.exception("downloading %s failed", state.model)
            state.state, state.error = "failed", f"download failed ({type(exc).__name__}: {exc})"
        finally:
            state.finished_at = time.time()

    def wait(self, model_id: str, timeout: float | None = None) -> bool:
        """Block until model_id's download thread ended; True when it did in time."""
        thread = self._threads.get(model_id)
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def state(self, model_id: str) -> DownloadState | None:
        """The latest download of model_id, if one was started."""
        return self._states.get(model_id)

    def active(self) -> dict[str, dict[str, Any]]:
        """Downloads running now, by model id (for /health)."""
        return {mid: s.to_dict() for mid, s in self._states.items() if s.state in ("starting", "downloading")}

    def running(self, model_id: str) -> bool:
        """True while model_id is being downloaded."""
        thread = self._threads.get(model_id)
        return thread is not None and thread.is_alive()
