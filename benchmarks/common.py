"""What every benchmark shares: the workload, one timed run, statistics, paths, contender settings."""

from __future__ import annotations

import math
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TINY_MODEL = ROOT / "tests" / "fixtures" / "tiny-sd-int8-ov"
CACHE = Path.home() / ".cache" / "sdedge"
FULL_MODEL = CACHE / "sd15-random-int8-ov"
FULL_DIFFUSERS = CACHE / "sd15-random-diffusers"
PROMPT = "a lighthouse on a cliff at dawn, oil painting"
NEGATIVE = "blurry, low detail"
TINY_DECODER = "vae_decoder_tiny"
# sdedge's sampler names -> genai's Scheduler.Type and the diffusers scheduler class of the same method
SCHEDULERS = {"euler_a": ("EULER_ANCESTRAL_DISCRETE", "EulerAncestralDiscreteScheduler"),
              "euler": ("EULER_DISCRETE", "EulerDiscreteScheduler"), "lcm": ("LCM", "LCMScheduler")}


@dataclass(frozen=True)
class Workload:
    """One generation, identical for every contender."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    seed: int
    guidance_scale: float
    sampler: str = "euler_a"

    @property
    def guided(self) -> bool:
        """True when classifier-free guidance runs (genai and diffusers both skip it at <= 1)."""
        return self.guidance_scale > 1.0

    def request_body(self) -> dict[str, Any]:
        """The sdedge request for this workload."""
        body = asdict(self)
        if not self.guided:
            body["negative_prompt"] = ""  # an unguided run never sees the negative prompt
        return body

    def with_steps(self, steps: int) -> Workload:
        """The same workload with another step count."""
        return replace(self, steps=steps)


@dataclass
class Run:
    """One timed generation: wall seconds and named details (milliseconds unless named otherwise)."""

    seconds: float
    stages: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ContenderSettings:
    """What every contender gets alike: the decoder and OpenVINO's compile properties."""

    decoder: str = "full"  # "full" or "tiny" (TAESD in vae_decoder_tiny/ beside the model)
    ov_properties: dict[str, Any] = field(default_factory=dict)
    server_only: tuple[str, ...] = ()  # settings with no equivalent outside the server (e.g. WARMUP)

    def describe(self) -> str:
        """One line for the report."""
        props = ", ".join(f"{k}={v}" for k, v in sorted(self.ov_properties.items())) or "OpenVINO defaults"
        only = f"; server only: {', '.join(self.server_only)}" if self.server_only else ""
        return f"decoder {self.decoder}, {props} (every OpenVINO contender){only}"


# settings the server reads that change what the other contenders must do too
_SHARED_SETTINGS = {"FAST_DECODER", "OV_NUM_THREADS", "OV_PERFORMANCE_HINT", "OV_ENABLE_MMAP"}


def contender_settings(server_env: dict[str, str], model: Path) -> ContenderSettings:
    """The server's settings (from --server-env and the environment) as every contender must apply them."""
    from sdedge.config import Settings

    overrides: dict[str, Any] = {k.lower(): v for k, v in server_env.items()}
    settings = Settings(_env_file=None, **overrides)  # type: ignore[call-arg]  # no .env: only what the server sees
    properties = {k: v for k, v in settings.ov_properties().items() if k != "CACHE_DIR"}  # load time only
    tiny = settings.fast_decoder and (model / TINY_DECODER / "openvino_model.xml").is_file()
    only = tuple(sorted(k for k in server_env if k.upper() not in _SHARED_SETTINGS))
    return ContenderSettings("tiny" if tiny else "full", properties, only)


def median(values: list[float]) -> float | None:
    """Median, or None for no values."""
    return statistics.median(values) if values else None


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100), nearest rank, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing."""
    return a / b if a is not None and b else None


def vm_hwm_bytes(pid: int) -> int | None:
    """Peak resident memory (VmHWM) of a process, or None when /proc does not say."""
    return _status_kib(pid, "VmHWM")


def vm_rss_bytes(pid: int) -> int | None:
    """Current resident memory (VmRSS) of a process."""
    return _status_kib(pid, "VmRSS")


def _status_kib(pid: int, key: str) -> int | None:
    try:
        found = re.search(rf"{key}:\s*(\d+)", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the tables."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def end_process(proc: subprocess.Popen[Any], terminate: bool = True, grace: float = 60) -> None:
    """Let a child end (SIGTERM first when asked), killing it after `grace` seconds."""
    if proc.poll() is None:
        if terminate:
            proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load_average() -> float:
    """The 1-minute load average: how busy the shared machine was."""
    return os.getloadavg()[0]
