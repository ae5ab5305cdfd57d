"""OpenVINO CPU settings side by side: load time, step time and peak RSS, each case in a fresh process.

    python scripts/measure_ov_settings.py ~/.cache/sdedge/sd15-random-int8-ov [--size 256] [--rounds 2]

Cases are interleaved round by round (the machine is shared); the table holds medians. These are the
measurements behind the defaults of OV_NUM_THREADS, OV_PERFORMANCE_HINT and OV_ENABLE_MMAP.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

CASES: dict[str, dict[str, Any]] = {
    "defaults (LATENCY, all cores, mmap)": {"PERFORMANCE_HINT": "LATENCY", "ENABLE_MMAP": True},
    "1 thread": {"PERFORMANCE_HINT": "LATENCY", "ENABLE_MMAP": True, "INFERENCE_NUM_THREADS": 1},
    "THROUGHPUT hint": {"PERFORMANCE_HINT": "THROUGHPUT", "ENABLE_MMAP": True},
    "no mmap": {"PERFORMANCE_HINT": "LATENCY", "ENABLE_MMAP": False},
}


def one(model: str, size: int, properties: dict[str, Any]) -> dict[str, float]:
    """Load, then two unguided 2-step generations; the second one's UNet time per step is reported."""
    import openvino_genai as g

    from sdedge.rng import genai_generator

    started = time.perf_counter()
    pipe = g.Text2ImagePipeline(model, "CPU", **properties)
    load = time.perf_counter() - started
    for seed in (1, 2):
        pipe.generate("a hill", width=size, height=size, num_inference_steps=2, guidance_scale=1.0,
                      generator=genai_generator(seed))
    unet = pipe.get_performance_metrics().get_unet_infer_duration().mean
    with open(f"/proc/{os.getpid()}/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024 / 1024
    return {"load_s": load, "unet_ms": unet, "rss_gb": rss}


def main() -> int:
    """Run every case in its own process, interleaved, and print the medians."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--case")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one(args.model, args.size, CASES[args.case])))
        return 0
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CASES}
    for _ in range(args.rounds):
        for name in CASES:
            out = subprocess.run([sys.executable, __file__, args.model, "--size", str(args.size), "--case", name],
                                 capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = statistics.median(r["unet_ms"] for r in runs[next(iter(CASES))])
    print(f"| case ({args.size}x{args.size}, no CFG) | load | UNet call | vs defaults | peak RSS |")
    print("| --- | --- | --- | --- | --- |")
    for name, rows in runs.items():
        med = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        print(f"| {name} | {med['load_s']:.1f} s | {med['unet_ms']:.0f} ms | {med['unet_ms'] / base:.2f}x "
              f"| {med['rss_gb']:.2f} GB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
