"""The peers (optimum-intel, diffusers on PyTorch) in worker processes that speak one JSON line per run.

A worker frees its memory when it ends and keeps torch out of the benchmark's own process. It may run
in another venv (`--peer-python`, or SDEDGE_BENCH_PEER_PYTHON) that has the `convert` extra. Per-step
time is the UNet's own per-call time (its forward is wrapped), so a 1-step run has one too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

if __name__ == "__main__":  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SCHEDULERS, TINY_DECODER, ContenderSettings, Run, Workload, end_process, vm_hwm_bytes

# compile properties optimum passes to compile_model; ENABLE_MMAP is a read-time property there
_OPTIMUM_KEYS = ("PERFORMANCE_HINT", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT", "NUM_STREAMS")


def peer_python() -> str:
    """The interpreter for the peer workers: SDEDGE_BENCH_PEER_PYTHON, else this one."""
    return os.environ.get("SDEDGE_BENCH_PEER_PYTHON") or sys.executable


def variant_folder(model: Path, decoder: str, work_dir: Path) -> Path:
    """The model folder itself, or (tiny decoder) a folder of links with vae_decoder -> vae_decoder_tiny."""
    if decoder != "tiny":
        return model
    target = work_dir / f"{model.name}-tiny-decoder"
    if not target.exists():
        target.mkdir(parents=True)
        for entry in model.iterdir():
            if entry.name not in ("vae_decoder", TINY_DECODER, "model_index.json"):
                (target / entry.name).symlink_to(entry.resolve())
        (target / "vae_decoder").symlink_to((model / TINY_DECODER).resolve())
        (target / "model_index.json").write_text(json.dumps(_diffusers_index(model)))
    return target


def _diffusers_index(model: Path) -> dict[str, Any]:
    """model_index.json as diffusers/optimum load it: a fused LCM-LoRA (LCM-marked by `sdedge convert
    --fuse-lora`, no time_cond_proj_dim in its UNet) runs as diffusers runs LCM-LoRA, a Stable Diffusion
    pipeline with the LCM scheduler (optimum's LCM pipeline needs the guidance embedding)."""
    index = json.loads((model / "model_index.json").read_text())
    unet = json.loads((model / "unet" / "config.json").read_text()) if (model / "unet" / "config.json").is_file() else {}
    if index.get("_class_name") == "LatentConsistencyModelPipeline" and unet.get("time_cond_proj_dim") is None:
        index["_class_name"] = "StableDiffusionPipeline"
    return index


class PeerProcess:
    """A peer pipeline in its own process; `error` is set when it could not start (e.g. not installed)."""

    def __init__(self, kind: str, model: Path, log_path: Path, settings: ContenderSettings | None = None,
                 python: str | None = None, timeout: float = 1800) -> None:
        self.kind, self.error, self.load_seconds = kind, None, 0.0
        self._log = log_path.open("ab")
        settings = settings or ContenderSettings()
        config = {"decoder": settings.decoder,
                  "ov_config": {k: v for k, v in settings.ov_properties.items() if k in _OPTIMUM_KEYS}}
        self.proc = subprocess.Popen([python or peer_python(), __file__, kind, str(model), json.dumps(config)],
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


# -- the worker side -------------------------------------------------------------------------------
def _load_peer(kind: str, model: str, config: dict[str, Any]) -> Any:
    """Build the optimum-intel or diffusers pipeline (the tiny decoder for diffusers: random TAESD)."""
    import torch

    torch.set_grad_enabled(False)
    if kind == "optimum":
        from optimum.intel import OVDiffusionPipeline

        return OVDiffusionPipeline.from_pretrained(model, device="CPU", compile=True, ov_config=config["ov_config"])
    from diffusers import AutoencoderTiny, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, torch_dtype=torch.float32, safety_checker=None,
                                                   requires_safety_checker=False)
    if config["decoder"] == "tiny":
        torch.manual_seed(0)  # the same random TAESD architecture as scripts/make_tiny_vae.py
        pipe.vae = AutoencoderTiny().float().eval()
    return pipe


class _Timed:
    """Wraps a callable attribute and records how long each call took (ms)."""

    def __init__(self, owner: Any, name: str) -> None:
        self.calls: list[float] = []
        self._inner = getattr(owner, name)
        setattr(owner, name, self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._inner(*args, **kwargs)
        finally:
            self.calls.append(1000 * (time.perf_counter() - started))


def _use_sampler(pipe: Any, sampler: str) -> None:
    import diffusers

    cls = getattr(diffusers, SCHEDULERS[sampler][1])
    if type(pipe.scheduler) is not cls:
        pipe.scheduler = cls.from_config(pipe.scheduler.config)


def _peer_generate(pipe: Any, work: Workload, unet: _Timed, vae: _Timed) -> tuple[float, dict[str, float]]:
    """One timed call; the UNet and decoder calls are timed by their wrappers."""
    import statistics

    import torch

    _use_sampler(pipe, work.sampler)
    unet.calls.clear()
    vae.calls.clear()
    started = time.perf_counter()
    pipe(work.prompt, negative_prompt=work.negative_prompt if work.guided else None, width=work.width,
         height=work.height, num_inference_steps=work.steps, guidance_scale=work.guidance_scale,
         generator=torch.Generator().manual_seed(work.seed))
    seconds = time.perf_counter() - started
    calls = unet.calls
    return seconds, {"unet_step_ms": statistics.median(calls) if calls else 0.0,
                     "unet_mean_ms": statistics.fmean(calls) if calls else 0.0, "unet_calls": float(len(calls)),
                     "steps": float(len(calls)), "vae_decoder_ms": sum(vae.calls)}


def _worker(kind: str, model: str, config: dict[str, Any]) -> int:
    """Worker main: load, then one JSON reply per JSON request line until stdin closes."""
    out: IO[str] = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # libraries' prints go to the log, never into the protocol

    def reply(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    started = time.perf_counter()
    try:
        pipe = _load_peer(kind, model, config)
    except ImportError as exc:
        reply({"error": f"not installed ({exc.name or exc})"})
        return 0
    except Exception as exc:  # noqa: BLE001 - report any load failure to the benchmark
        reply({"error": f"failed to load: {exc}"})
        return 1
    unet, vae = _Timed(pipe.unet, "forward"), _Timed(pipe.vae, "decode")
    reply({"ready": True, "load_seconds": time.perf_counter() - started})
    for line in sys.stdin:
        try:
            seconds, stages = _peer_generate(pipe, Workload(**json.loads(line)), unet, vae)
            reply({"seconds": seconds, "stages": stages})
        except Exception as exc:  # noqa: BLE001 - a failed run is reported, the worker goes on
            reply({"error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker(sys.argv[1], sys.argv[2], json.loads(sys.argv[3])))
