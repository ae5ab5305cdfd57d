#!/usr/bin/env python
"""Peak memory when OpenVINO computes in f32 (what an AVX2-only CPU does), stage by stage, per setting.

    python benchmarks/f32_memory.py ~/.cache/sdedge/sd15-random-int8-ov [--size 512] [--case NAME ...]

On a CPU with AVX-512 bf16 or AMX, OpenVINO runs an int8-weight model in bf16; on an AVX2-only CPU it
runs it in f32. `INFERENCE_PRECISION_HINT=f32` reproduces the f32 execution here. Each case runs in a
fresh process: compile the text encoder, UNet and VAE decoder one by one, then one guided 2-step
generation. Per stage it reports the peak resident memory (VmHWM, reset between stages through
/proc/self/clear_refs) and, sampled every 20 ms, how much of the resident memory was anonymous
(the process's own allocations) or file-backed (mapped weights, which the kernel can drop and re-read),
and its seconds. `--hybrid OUT` adds the cases of a `sdedge convert SRC OUT --hybrid-int8` copy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GIB = 1024.0**3
F32 = {"INFERENCE_PRECISION_HINT": "f32"}
CASES: dict[str, dict[str, Any]] = {
    "default (the CPU's own precision)": {},
    "f32": F32,
    "f32, ENABLE_MMAP=false": {**F32, "ENABLE_MMAP": False},
    "f32, DYNAMIC_QUANTIZATION_GROUP_SIZE=32": {**F32, "DYNAMIC_QUANTIZATION_GROUP_SIZE": 32},
    "f32, tiny decoder": {**F32, "tiny": True},
    "f32, VAE decode in 4 tiles": {**F32, "tiles": 2},
    "f32, static shapes": {**F32, "static": True},
    "f32, static shapes, tiny decoder": {**F32, "static": True, "tiny": True},
    "f32, warm compile cache": {**F32, "warm_cache": True},
    # the --hybrid model (`sdedge convert SRC OUT --hybrid-int8`): convolutions in int8 on every CPU
    "hybrid int8": {"hybrid": True},
    "hybrid int8, tiny decoder": {"hybrid": True, "tiny": True},
    "hybrid int8, f32": {**F32, "hybrid": True},
    "hybrid int8, f32, tiny decoder": {**F32, "hybrid": True, "tiny": True},
}
OPTIONS = ("tiny", "tiles", "static", "warm_cache", "hybrid")  # case options that are not OpenVINO properties
STAGES = ("compile text encoder", "compile UNet", "compile VAE decoder", "text encoder + UNet step 1",
          "UNet steps 2-3", "VAE decode")


def _status() -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of this process, in bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _reset_peak() -> None:
    """Start a new VmHWM window (Linux: writing 5 to clear_refs resets the peak RSS)."""
    Path("/proc/self/clear_refs").write_text("5")


class Stages:
    """Per-stage peak RSS, with the anonymous/file split at the sampled peak."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float | str]] = []
        self._stage, self._best, self._started = "", (0, 0, 0), time.perf_counter()
        self._lock, self._done = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            s = _status()
            with self._lock:
                if s["VmRSS"] > self._best[0]:
                    self._best = (s["VmRSS"], s["RssAnon"], s["RssFile"])

    def begin(self, stage: str) -> None:
        """Close the running stage and open the next."""
        with self._lock:
            if self._stage:
                now = _status()
                peak, anon, file = self._best
                self.rows.append({"stage": self._stage, "peak_gib": now["VmHWM"] / GIB, "anon_at_peak_gib": anon / GIB,
                                  "file_at_peak_gib": file / GIB, "after_gib": now["VmRSS"] / GIB,
                                  "seconds": time.perf_counter() - self._started})
            _reset_peak()
            self._started = time.perf_counter()
            now = _status()
            self._stage, self._best = stage, (now["VmRSS"], now["RssAnon"], now["RssFile"])

    def close(self) -> list[dict[str, float | str]]:
        """End sampling; the rows."""
        self.begin("")
        self._done.set()
        self._thread.join()
        return self.rows


def run_case(model: Path, size: int, properties: dict[str, Any]) -> dict[str, Any]:
    """Compile each part, then generate once (2 steps, CFG) at size x size, recording each stage."""
    import numpy as np
    import openvino as ov
    import openvino_genai as g

    from sdedge.rng import genai_generator

    props = {k: v for k, v in properties.items() if k not in OPTIONS}
    if properties.get("warm_cache"):  # what a restarted server does (COMPILE_CACHE=true): load the compiled blobs
        props["CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"sdedge-f32-memory-cache-{model.name}-{size}")
    tiles = int(properties.get("tiles", 1))
    decoder = "vae_decoder_tiny" if properties.get("tiny") else "vae_decoder"
    stages = Stages()
    stages.begin(STAGES[0])
    clip = g.CLIPTextModel(str(model / "text_encoder"))
    scheduler = g.Scheduler.from_config(str(model / "scheduler" / "scheduler_config.json"))
    if properties.get("static"):  # shapes fixed before compiling: all three compile in the first stage
        unet, vae = g.UNet2DConditionModel(str(model / "unet")), g.AutoencoderKL(str(model / decoder))
        pipe = g.Text2ImagePipeline.stable_diffusion(scheduler, clip, unet, vae)
        pipe.reshape(1, size, size, 7.5)
        pipe.compile("CPU", **props)
        stages.begin(STAGES[1])
        stages.begin(STAGES[2])
    else:
        clip.compile("CPU", **props)
        stages.begin(STAGES[1])
        unet = g.UNet2DConditionModel(str(model / "unet"))
        unet.compile("CPU", **props)
        stages.begin(STAGES[2])
        vae = g.AutoencoderKL(str(model / decoder))
        vae.compile("CPU", **props)
        pipe = g.Text2ImagePipeline.stable_diffusion(scheduler, clip, unet, vae)
    stages.begin(STAGES[3])

    latents: list[Any] = []

    def on_step(step: int, steps: int, latent: Any) -> bool:  # PNDM runs 3 UNet calls for 2 steps
        stages.begin(STAGES[5] if step == steps - 1 else STAGES[4])
        if step == steps - 1 and tiles > 1:  # keep the final latent and stop before genai's own decode
            latents.append(np.array(latent.data, copy=True))
            return True
        return False

    pipe.generate("a lighthouse", negative_prompt="blurry", width=size, height=size, num_inference_steps=2,
                  guidance_scale=7.5, generator=genai_generator(1), callback=on_step)
    if latents:  # decode tile by tile (no overlap: the memory, not the seams, is measured here)
        step = latents[0].shape[-1] // tiles
        for row in range(tiles):
            for col in range(tiles):
                tile = latents[0][..., row * step:(row + 1) * step, col * step:(col + 1) * step]
                pipe.decode(ov.Tensor(np.ascontiguousarray(tile)))
    rows = stages.close()
    return {"stages": rows, "peak_gib": max(float(r["peak_gib"]) for r in rows)}


def main(argv: list[str] | None = None) -> int:
    """Each case in its own process; a table of per-stage peaks."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--case", action="append", choices=list(CASES), help="run only these cases")
    parser.add_argument("--hybrid", type=Path, help="the hybrid int8 copy of MODEL, for the hybrid cases")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(args.model, args.size, CASES[args.child])))
        return 0
    results = {}
    for name in args.case or [name for name, case in CASES.items() if args.hybrid or not case.get("hybrid")]:
        model = args.hybrid if CASES[name].get("hybrid") else args.model
        if model is None:
            parser.error(f"{name!r} needs --hybrid MODEL (sdedge convert SRC OUT --hybrid-int8)")
        command = [sys.executable, __file__, str(model), "--size", str(args.size), "--child", name]
        if CASES[name].get("warm_cache"):  # the first process fills the cache; the second is measured
            subprocess.run(command, capture_output=True, check=False)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name}: failed: {done.stderr[-500:]}", file=sys.stderr)
            continue
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name}: peak {results[name]['peak_gib']:.2f} GiB", file=sys.stderr, flush=True)
    header = "| stage | " + " | ".join(results) + " |"
    print(header + "\n|" + " --- |" * (len(results) + 1))
    for index, stage in enumerate(STAGES):
        cells = []
        for res in results.values():
            rows = [r for r in res["stages"] if r["stage"] == stage]
            row = max(rows, key=lambda r: float(r["peak_gib"]))
            seconds = sum(float(r.get("seconds", 0)) for r in rows)
            cells.append(f"{row['peak_gib']:.2f} (anon {row['anon_at_peak_gib']:.2f}, file {row['file_at_peak_gib']:.2f}; "
                         f"{seconds:.1f} s)")
        print(f"| {stage} | " + " | ".join(cells) + " |")
    print("| **peak RSS** | " + " | ".join(f"**{r['peak_gib']:.2f} GiB = {r['peak_gib'] * GIB / 1e9:.2f} GB**"
                                           for r in results.values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
