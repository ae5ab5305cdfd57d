"""The contenders of `sdedge bench`: raw openvino-genai, sdedge's server process, the peers, the FLOP floor.

The raw genai pipeline runs in the benchmark's own process (the reference). The peers (optimum-intel
and diffusers on PyTorch) run in worker processes of this module, so their memory is freed when they
end and torch is never imported by the benchmark itself. A worker speaks one JSON object per line.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import IO, Any

import numpy as np

from sdedge.rng import genai_generator

DEFAULT_SCHEDULER = "EULER_ANCESTRAL_DISCRETE"  # sdedge's default sampler, euler_a


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

    def request_body(self) -> dict[str, Any]:
        """The sdedge request for this workload (sdedge's default sampler, named)."""
        return {**asdict(self), "sampler": "euler_a"}

    def with_steps(self, steps: int) -> Workload:
        """The same workload with another step count."""
        return replace(self, steps=steps)


@dataclass
class Run:
    """One timed generation: wall seconds and named details (milliseconds unless named otherwise)."""

    seconds: float
    stages: dict[str, float] = field(default_factory=dict)


def median(values: list[float]) -> float | None:
    """Median, or None for no values."""
    return statistics.median(values) if values else None


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100), nearest rank, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def vm_hwm_bytes(pid: int) -> int | None:
    """Peak resident memory (VmHWM) of a process, or None when /proc does not say."""
    try:
        found = re.search(r"VmHWM:\s*(\d+)", Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


# -- raw openvino-genai, in this process ---------------------------------------------------------
class RawGenai:
    """`Text2ImagePipeline.generate` called directly: the reference every ratio is taken against."""

    def __init__(self, model: Path, properties: dict[str, Any] | None = None) -> None:
        import openvino_genai as ov_genai

        self._genai = ov_genai
        started = time.perf_counter()
        self.pipe = ov_genai.Text2ImagePipeline(str(model), "CPU", **(properties or {}))
        self.load_seconds = time.perf_counter() - started
        config = model / "scheduler" / "scheduler_config.json"
        kind = getattr(ov_genai.Scheduler.Type, DEFAULT_SCHEDULER)
        self.pipe.set_scheduler(ov_genai.Scheduler.from_config(str(config), kind))

    def run(self, work: Workload) -> Run:
        """Generate once; stage timings come from genai's performance metrics."""
        kwargs: dict[str, Any] = {}
        if work.guidance_scale > 1.0:  # genai refuses a negative prompt it would not use
            kwargs["negative_prompt"] = work.negative_prompt
        started = time.perf_counter()
        self.pipe.generate(work.prompt, width=work.width, height=work.height, num_inference_steps=work.steps,
                           guidance_scale=work.guidance_scale, num_images_per_prompt=1,
                           generator=genai_generator(work.seed), **kwargs)
        seconds = time.perf_counter() - started
        return Run(seconds, genai_stages(self.pipe.get_performance_metrics()))


def genai_stages(metrics: Any) -> dict[str, float]:
    """Text encoder, UNet per call (median), UNet calls, VAE decode and generate, in ms."""
    unet_calls = [d / 1000 for d in metrics.raw_metrics.unet_inference_durations]  # microseconds
    encoder = metrics.get_text_encoder_infer_duration()
    return {
        "text_encoder_ms": float(sum(encoder.values()) if isinstance(encoder, dict) else encoder),
        "unet_step_ms": float(statistics.median(unet_calls)) if unet_calls else 0.0,
        "unet_calls": float(len(unet_calls)),
        "unet_total_ms": float(sum(unet_calls)),
        "vae_decoder_ms": float(metrics.get_vae_decoder_infer_duration()),
        "generate_ms": float(metrics.get_generate_duration()),
    }


# -- the floor -------------------------------------------------------------------------------------
def _op_flops(op: Any) -> float:
    """Multiply-add FLOPs (2 per MAC) of one static-shape op, 0 for ops we do not count."""
    kind = op.get_type_name()
    if kind not in ("MatMul", "Convolution", "GroupConvolution", "ScaledDotProductAttention"):
        return 0.0
    out = float(np.prod(list(op.get_output_partial_shape(0).to_shape())))
    inputs = [list(op.get_input_partial_shape(i).to_shape()) for i in range(op.get_input_size())]
    if kind == "MatMul":
        a, attrs = inputs[0], op.get_attributes()
        k = a[-1] if len(a) == 1 or not attrs.get("transpose_a") else a[-2]
        return 2.0 * out * k
    if kind == "Convolution":
        return 2.0 * out * float(np.prod(inputs[1][1:]))
    if kind == "GroupConvolution":
        return 2.0 * out * float(np.prod(inputs[1][2:]))
    q, k = inputs[0], inputs[1]  # SDPA: Q.K^T then A.V, both L x S x d per head
    return 2.0 * 2.0 * float(np.prod(q[:-1])) * k[-2] * q[-1]


def ir_flops(xml: Path, width: int, height: int, batch: int) -> float:
    """FLOPs of one call of a UNet or VAE decoder IR at this image size and batch, with static shapes."""
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    fill = {4: {0: batch, 2: height // 8, 3: width // 8}, 3: {0: batch, 1: 77}}  # latents, text embeddings
    shapes = {}
    for port in model.inputs:
        dims = [d.get_length() if d.is_static else -1 for d in port.get_partial_shape()]
        wanted = fill.get(len(dims), {0: batch})
        shapes[port.get_any_name()] = ov.PartialShape([wanted.get(i, 1) if d < 0 else d for i, d in enumerate(dims)])
    model.reshape(shapes)
    return sum(_op_flops(op) for op in model.get_ordered_ops())


def matmul_flops_per_second(seconds: float, m: int, k: int, n: int, precision: str | None = None) -> float:
    """Median FLOP/s of an (m x k) @ (k x n) OpenVINO MatMul on the CPU (default precision: bf16 if the CPU has it)."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    param = ops.parameter([m, k], ov.Type.f32)
    weights = ops.constant(rng.standard_normal((k, n), dtype=np.float32))
    model = ov.Model([ops.matmul(param, weights, False, False)], [param])
    config = {"INFERENCE_PRECISION_HINT": precision} if precision else {}
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    data = rng.standard_normal((m, k), dtype=np.float32)
    for _ in range(3):
        request.infer([data])
    durations: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(durations) < 5:
        started = time.perf_counter()
        request.infer([data])
        durations.append(time.perf_counter() - started)
    return 2.0 * m * k * n / statistics.median(durations)


# -- peers in worker processes ---------------------------------------------------------------------
class PeerProcess:
    """A peer pipeline in its own process; `error` is set when it could not start (e.g. not installed)."""

    def __init__(self, kind: str, model: Path, log_path: Path, timeout: float = 1800) -> None:
        self.kind, self.error, self.load_seconds = kind, None, 0.0
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "sdedge.bench_peers", kind, str(model)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True)
        hello = self._read(timeout)
        self.error = hello.get("error")
        self.load_seconds = float(hello.get("load_seconds", 0.0))

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the worker answers every request with one line
        if not line:
            self.proc.wait(timeout)
            return {"error": f"{self.kind} worker exited with code {self.proc.returncode} (see {self._log.name})"}
        reply: dict[str, Any] = json.loads(line)
        return reply

    def run(self, work: Workload) -> Run:
        """Generate once in the worker; raise RuntimeError when it failed."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(asdict(work)) + "\n")
        self.proc.stdin.flush()
        reply = self._read(1800)
        if "error" in reply:
            raise RuntimeError(f"{self.kind}: {reply['error']}")
        return Run(float(reply["seconds"]), {k: float(v) for k, v in reply["stages"].items()})

    def peak_rss(self) -> int | None:
        """The worker's peak resident memory so far."""
        return vm_hwm_bytes(self.proc.pid)

    def close(self) -> None:
        """Ask the worker to end (stdin closed), and wait for it."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        end_process(self.proc, terminate=False)
        self._log.close()


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


def _load_peer(kind: str, model: str) -> Any:
    """Build the optimum-intel or diffusers pipeline with sdedge's default sampler (Euler ancestral)."""
    import torch
    from diffusers import EulerAncestralDiscreteScheduler

    torch.set_grad_enabled(False)
    if kind == "optimum":
        from optimum.intel import OVStableDiffusionPipeline

        pipe: Any = OVStableDiffusionPipeline.from_pretrained(model, device="CPU", compile=True)
    else:
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline.from_pretrained(model, torch_dtype=torch.float32, safety_checker=None,
                                                       requires_safety_checker=False)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    return pipe


def _peer_generate(pipe: Any, work: Workload) -> tuple[float, dict[str, float]]:
    """One timed call; per-step time is the median gap between step-end callbacks."""
    import torch

    marks: list[float] = []

    def on_step(_pipe: Any, _step: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        marks.append(time.perf_counter())
        return kwargs

    started = time.perf_counter()
    pipe(work.prompt, negative_prompt=work.negative_prompt or None, width=work.width, height=work.height,
         num_inference_steps=work.steps, guidance_scale=work.guidance_scale,
         generator=torch.Generator().manual_seed(work.seed), callback_on_step_end=on_step)
    seconds = time.perf_counter() - started
    gaps = [b - a for a, b in pairwise(marks)]
    return seconds, {"unet_step_ms": 1000 * statistics.median(gaps) if gaps else 0.0, "steps": float(len(marks)),
                     "after_last_step_ms": 1000 * (started + seconds - marks[-1]) if marks else 0.0}


def _worker(kind: str, model: str) -> int:
    """Worker main: load, then one JSON reply per JSON request line until stdin closes."""
    out: IO[str] = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # libraries' prints go to the log, never into the protocol

    def reply(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    started = time.perf_counter()
    try:
        pipe = _load_peer(kind, model)
    except ImportError as exc:
        reply({"error": f"not installed ({exc.name or exc})"})
        return 0
    except Exception as exc:  # noqa: BLE001 - report any load failure to the benchmark
        reply({"error": f"failed to load: {exc}"})
        return 1
    reply({"ready": True, "load_seconds": time.perf_counter() - started})
    for line in sys.stdin:
        try:
            seconds, stages = _peer_generate(pipe, Workload(**json.loads(line)))
            reply({"seconds": seconds, "stages": stages})
        except Exception as exc:  # noqa: BLE001 - a failed run is reported, the worker goes on
            reply({"error": str(exc)})
    return 0


# -- sdedge itself, as a real server process -------------------------------------------------------
class Server:
    """`python -m sdedge serve` on a free port with its own data folders; a client for the bench."""

    def __init__(self, model: Path, root: Path, cache_dir: Path, size: int, env: dict[str, str] | None = None) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.base = f"http://127.0.0.1:{self.port}"
        root.mkdir(parents=True, exist_ok=True)
        package_root = str(Path(__file__).resolve().parent.parent)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        self.env.update({
            "PYTHONPATH": os.pathsep.join([package_root, *filter(None, [os.environ.get("PYTHONPATH")])]),
            "HF_HUB_OFFLINE": "1", "HOST": "127.0.0.1", "PORT": str(self.port), "OPENVINO_DEVICE": "CPU",
            "STABLE_DIFFUSION_REPO_ID": str(model), "MODELS_CACHE_DIR": str(cache_dir),
            "DATA_DIR": str(root / "data"), "GENERATED_IMAGES_DIR": str(root / "generated"),
            "DEFAULT_SIZE": str(size), "MIN_SIZE": str(min(64, size)), "REQUEST_TIMEOUT": "3600",
            "JOB_TIMEOUT": "3600", "LOG_LEVEL": "WARNING", **(env or {}),
        })
        self.root, self.log_path = root, root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 1800) -> float:
        """Start the process; return the seconds until /health/ready answered 200."""
        started = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "sdedge", "serve"], cwd=self.root, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if self.request("GET", "/health/ready", timeout=5)[0] == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        """The end of the server's log."""
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def request(self, method: str, path: str, body: Any = None, timeout: float = 3600) -> tuple[int, Any]:
        """One HTTP exchange; returns the status and the decoded JSON body."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def image(self, work: Workload) -> Run:
        """POST /image and wait for the answer; stages are the server's own timings."""
        started = time.perf_counter()
        status, body = self.request("POST", "/image", work.request_body())
        seconds = time.perf_counter() - started
        if status != 200:
            raise RuntimeError(f"POST /image answered {status}: {body}")
        return Run(seconds, {k: float(v) for k, v in body.get("timings", {}).items()})

    def job(self, work: Workload, poll: float = 0.05) -> Run:
        """Submit a text2img job and poll GET /jobs/<id> until it succeeded; notes the first preview."""
        started = time.perf_counter()
        status, view = self.request("POST", "/generate/text2img", work.request_body())
        if status not in (200, 202):
            raise RuntimeError(f"POST /generate/text2img answered {status}: {view}")
        job_id, stages = view["id"], {}
        while view["status"] not in ("succeeded", "failed", "canceled"):
            eta = view.get("eta_seconds")
            time.sleep(poll if "first_preview_ms" not in stages or eta is None else min(1.0, max(0.1, eta / 2)))
            view = self.request("GET", f"/jobs/{job_id}")[1]
            if view.get("preview_url") and "first_preview_ms" not in stages:
                stages["first_preview_ms"] = 1000 * (time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if view["status"] != "succeeded":
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
        return vm_hwm_bytes(self.proc.pid) if self.proc else None

    def stop(self) -> None:
        """SIGTERM (the server re-queues nothing: it is idle), then kill after 30 s."""
        if self.proc:
            end_process(self.proc, grace=30)


if __name__ == "__main__":
    raise SystemExit(_worker(sys.argv[1], sys.argv[2]))
