"""Run `sdedge serve` as a real process on a free port, for end-to-end tests (and benchmarks/)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

FIXTURE_MODEL = Path(__file__).parent / "fixtures" / "tiny-sd-int8-ov"  # conftest's; no pytest import here
# Settings every tuned server gets; the tests' conftest adds its shared compile cache, benchmarks add nothing
# (they measure cold starts).
EXTRA_ENV: dict[str, str] = {}


_started: list[ServerProcess] = []


def stop_all() -> None:
    """Stop every server process a test started and left running (e.g. after a failed assertion)."""
    while _started:
        _started.pop().stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sdedge_command() -> list[str]:
    """The installed console script, or the module when only the source tree is importable."""
    script = shutil.which("sdedge")
    return [script] if script else [sys.executable, "-m", "sdedge"]


def user_environment() -> dict[str, str]:
    """The test runner's environment without any sdedge setting or hub variable, as a new user's shell."""
    from sdedge.config import Settings

    names = {name.upper() for name in Settings.model_fields} | {"HF_TOKEN", "HUGGINGFACE_TOKEN"}
    return {k: v for k, v in os.environ.items() if k.upper() not in names and not k.startswith("HF_")}


class ServerProcess:
    """One server process with its own data folders under tmp_path.

    With defaults=True it gets no path setting and no tuning at all, only the tiny model, the port and
    AUTO_DOWNLOAD_MODELS=false, and starts in tmp_path/"work", an empty folder: the README's way.
    """

    def __init__(self, tmp_path: Path, *, defaults: bool = False, model: Path = FIXTURE_MODEL, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        only_model = {"HOST": "127.0.0.1", "PORT": str(self.port), "STABLE_DIFFUSION_REPO_ID": str(model)}
        tuned = {
            "MODELS_CACHE_DIR": str(tmp_path / "models"),
            **EXTRA_ENV,
            "GENERATED_IMAGES_DIR": str(tmp_path / "generated"),
            "DEFAULT_SIZE": "64",
            "MIN_SIZE": "32",
            "DEFAULT_STEPS": "3",
        }
        if defaults:
            self.env = {**user_environment(), **only_model, "AUTO_DOWNLOAD_MODELS": "false", **env}
            self.cwd = tmp_path / "work"
            self.cwd.mkdir()
        else:
            self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("HF_")}, **only_model, **tuned, **env}
            self.cwd = tmp_path
        self.log_path = tmp_path / f"server-{self.port}.log"  # outside cwd: the work folder stays the server's
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, command: list[str] | None = None) -> ServerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(command or [*sdedge_command(), "serve"], cwd=self.cwd, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)
        _started.append(self)
        return self

    def wait_ready(self, timeout: float = 120, path: str = "/health") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc and self.proc.poll() is None, f"server exited: {self.log()}"
            try:
                status, body = self.request("GET", path)
                if status == 200:
                    return body
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout}s: {self.log()}")

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                content_type: str = "application/json", timeout: float = 60) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, _decode(resp.read(), resp.headers.get_content_type())
        except urllib.error.HTTPError as err:
            return err.code, _decode(err.read(), err.headers.get_content_type())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _decode(data: bytes, content_type: str) -> Any:
    return json.loads(data) if content_type == "application/json" else data
