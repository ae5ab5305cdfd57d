"""sdedge as the user runs it: `sdedge serve` in its own process (the tests' runner), timed through HTTP."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Run, Workload, vm_hwm_bytes

if str(ROOT / "tests") not in sys.path:  # the tests' server runner, shared rather than copied
    sys.path.insert(0, str(ROOT / "tests"))

from serverproc import ServerProcess  # noqa: E402

# request fields the time-to-image cases need that the server may not accept yet (issue 17)
FEATURES = ("loras", "preset", "decoder")


class SdedgeServer:
    """One `python -m sdedge serve` with its own folders under `root`; a client for the benchmark."""

    def __init__(self, model: Path, root: Path, cache_dir: Path, size: int, env: dict[str, str] | None = None) -> None:
        root.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = {  # all str: environment variables
            "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "HF_HUB_OFFLINE": "1", "OPENVINO_DEVICE": "CPU", "MODELS_CACHE_DIR": str(cache_dir),
            "DATA_DIR": str(root / "data"), "GENERATED_IMAGES_DIR": str(root / "generated"), "DEFAULT_SIZE": str(size),
            "MIN_SIZE": str(min(64, size)), "REQUEST_TIMEOUT": "3600", "JOB_TIMEOUT": "3600", "LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.proc = ServerProcess(root, model=model, **settings)

    def start(self, timeout: float = 1800) -> float:
        """Start the process; return the seconds until /health/ready answered 200."""
        started = time.perf_counter()
        self.proc.start([sys.executable, "-m", "sdedge", "serve"])
        self.proc.wait_ready(timeout, path="/health/ready")
        return time.perf_counter() - started

    def request(self, method: str, path: str, body: Any = None, timeout: float = 3600) -> tuple[int, Any]:
        """One HTTP exchange; the status and the decoded body."""
        return self.proc.request(method, path, body, timeout=timeout)

    def fields(self) -> set[str]:
        """The text-to-image request fields the server accepts (from GET /modes)."""
        status, body = self.request("GET", "/modes", timeout=30)
        if status != 200 or not isinstance(body, dict):
            return set()
        modes = {m.get("id"): m for m in body.get("modes", [])}
        return set((modes.get("text2img") or {}).get("fields", {}))

    def image(self, work: Workload, extra: dict[str, Any] | None = None) -> Run:
        """POST /image and wait for the answer; stages are the server's own timings."""
        started = time.perf_counter()
        status, body = self.request("POST", "/image", {**work.request_body(), **(extra or {})})
        seconds = time.perf_counter() - started
        if status != 200:
            raise RuntimeError(f"POST /image answered {status}: {body}")
        return Run(seconds, {k: float(v) for k, v in body.get("timings", {}).items()})

    def job(self, work: Workload, poll: float = 0.05, extra: dict[str, Any] | None = None) -> Run:
        """Submit a text2img job and poll GET /jobs/<id> until it succeeded; notes the first preview."""
        started = time.perf_counter()
        status, view = self.request("POST", "/generate/text2img", {**work.request_body(), **(extra or {})})
        if status not in (200, 202):
            raise RuntimeError(f"POST /generate/text2img answered {status}: {view}")
        job_id, stages = view["id"], {}
        while view["status"] not in ("completed", "failed", "canceled"):
            eta = view.get("eta_seconds")
            time.sleep(poll if "first_preview_ms" not in stages or eta is None else min(1.0, max(0.1, eta / 2)))
            view = self.request("GET", f"/jobs/{job_id}")[1]
            if view.get("preview_url") and "first_preview_ms" not in stages:
                stages["first_preview_ms"] = 1000 * (time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if view["status"] != "completed":
            raise RuntimeError(f"job {job_id} ended {view['status']}: {view.get('error')}")
        stages.update({k: float(v) for k, v in (view.get("result") or {}).get("timings", {}).items()})
        return Run(seconds, stages)

    def health_during_job(self, work: Workload, interval: float = 0.05) -> list[float]:
        """GET /health every `interval` s while one job runs; the latencies in ms."""
        latencies: list[float] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                started = time.perf_counter()
                self.request("GET", "/health", timeout=30)
                latencies.append(1000 * (time.perf_counter() - started))
                done.wait(max(0.0, interval - (time.perf_counter() - started)))

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            self.job(work, poll=0.5)
        finally:
            done.set()
            thread.join()
        return latencies

    def peak_rss(self) -> int | None:
        """VmHWM of the server process."""
        return vm_hwm_bytes(self.proc.proc.pid) if self.proc.proc else None

    def stop(self) -> None:
        """SIGTERM, then kill (the runner's own stop)."""
        self.proc.stop()
