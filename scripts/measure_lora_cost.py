#!/usr/bin/env python
"""Measure what LoRA costs through openvino-genai, as ratios to one denoising step of the same run.

One InpaintingPipeline built with sdedge's filler adapter (Text2ImagePipeline derived from it, as the
server does), two seeded random kohya LoRAs shaped for the model (all attention-block layers and the
text encoder, like a kohya default training). Figures (medians over --rounds):

- step: UNet step with LoRA enabled but off, with one LoRA, and on a plain pipeline (no adapters);
- first use: reading + rewriting the file (prepare_lora) and wrapping it as an Adapter, then the extra
  time of the first generate() that applies it;
- switch: extra time of a generate() after changing LoRA (A -> B), changing only a weight, turning
  LoRA off, and adding a second LoRA - each against an unchanged generate() right after it.

    python scripts/measure_lora_cost.py --model tests/fixtures/tiny-sd-int8-ov --size 64
    python scripts/measure_lora_cost.py --model ~/.cache/sdedge/sd15-random-int8-ov --size 512 --rounds 3

``--memory plain|enabled|lora`` instead builds one pipeline in this process (no adapters; LoRA enabled;
enabled with one LoRA applied), runs one generate() and prints the peak RSS: run each in its own process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "scripts"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from make_tiny_loras import in_attention, kohya  # noqa: E402

from sdedge.lora_adapters import AdapterCache, LoraSelector, safetensors_bytes  # noqa: E402
from sdedge.rng import genai_generator  # noqa: E402


def run(pipe: Any, size: int, steps: int, adapters: Any = None) -> tuple[float, list[float]]:
    """Wall seconds of one generate() and its per-step UNet durations (seconds)."""
    kwargs = {} if adapters is None else {"adapters": adapters}
    started = time.perf_counter()
    pipe.generate("a photo of a cat", width=size, height=size, num_inference_steps=steps, guidance_scale=7.5,
                  generator=genai_generator(1), **kwargs)
    wall = time.perf_counter() - started
    raw = pipe.get_performance_metrics().raw_metrics
    return wall, [d / 1e6 for d in raw.unet_inference_durations]  # microseconds


def peak_rss_gib() -> float:
    """This process's peak resident set (VmHWM), GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def memory(model: Path, variant: str, size: int, steps: int, rank: int) -> dict[str, Any]:
    """Peak RSS of one pipeline variant after one generate()."""
    import openvino_genai as g

    if variant == "plain":
        pipe, adapters = g.Text2ImagePipeline(g.InpaintingPipeline(model, "CPU")), None
    else:
        cache = AdapterCache(model)
        pipe = g.Text2ImagePipeline(g.InpaintingPipeline(model, "CPU", adapters=cache.enabling_config()))
        pairs = []
        if variant == "lora":
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "lora.safetensors"
                path.write_bytes(safetensors_bytes(kohya(cache.layers, 1, rank, rank / 2, in_attention)))
                pairs = [(cache.get(path, "lora")[0], 1.0)]
        adapters = LoraSelector(cache).config(pairs)
    built = peak_rss_gib()
    run(pipe, size, steps, adapters)
    return {"variant": variant, "size": size, "peak_rss_after_build_gib": built, "peak_rss_gib": peak_rss_gib()}


def main(argv: list[str] | None = None) -> int:
    """Build the pipelines, run the rounds, print a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=2, help="steps per generate (>= 2)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory", choices=["plain", "enabled", "lora"])
    args = parser.parse_args(argv)
    if args.memory:
        print(json.dumps(memory(args.model, args.memory, args.size, args.steps, args.rank)))
        return 0
    import openvino_genai as g

    out: dict[str, Any] = {"model": str(args.model), "size": args.size, "steps": args.steps, "rank": args.rank}
    started = time.perf_counter()
    plain = g.InpaintingPipeline(args.model, "CPU")
    out["build_plain_s"] = time.perf_counter() - started
    plain_t2i = g.Text2ImagePipeline(plain)
    started = time.perf_counter()
    cache = AdapterCache(args.model)
    out["filler_s"] = time.perf_counter() - started
    started = time.perf_counter()
    pipe = g.InpaintingPipeline(args.model, "CPU", adapters=cache.enabling_config())
    out["build_enabled_s"] = time.perf_counter() - started
    t2i, selector = g.Text2ImagePipeline(pipe), LoraSelector(cache)

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for seed in (1, 2):
            path = Path(tmp) / f"lora{seed}.safetensors"
            path.write_bytes(safetensors_bytes(kohya(cache.layers, seed, args.rank, args.rank / 2, in_attention)))
            paths.append(path)
        out["lora_file_mb"] = paths[0].stat().st_size / 1e6
        rows: dict[str, list[float]] = {k: [] for k in (
            "step_plain", "step_off", "step_lora", "prepare", "first_apply", "switch", "weight", "off", "second")}
        run(plain_t2i, args.size, args.steps)
        run(t2i, args.size, args.steps, selector.config([]))  # warm both
        for _ in range(args.rounds):
            _, steps = run(plain_t2i, args.size, args.steps)
            rows["step_plain"] += steps
            _, steps = run(t2i, args.size, args.steps, selector.config([]))
            rows["step_off"] += steps
            cache.clear()  # the next get() reads and rewrites the files again: a first use
            started = time.perf_counter()
            a, _ = cache.get(paths[0], "a")
            rows["prepare"].append(time.perf_counter() - started)
            b, _ = cache.get(paths[1], "b")

            def cost(pairs: list[tuple[Any, float]]) -> float:
                changed, _ = run(t2i, args.size, args.steps, selector.config(pairs))
                same, steps = run(t2i, args.size, args.steps, selector.config(pairs))
                if pairs:
                    rows["step_lora"].extend(steps)
                return changed - same

            rows["first_apply"].append(cost([(a, 1.0)]))
            rows["switch"].append(cost([(b, 1.0)]))
            rows["weight"].append(cost([(b, 0.5)]))
            rows["off"].append(cost([]))
            run(t2i, args.size, args.steps, selector.config([(a, 1.0)]))
            rows["second"].append(cost([(a, 1.0), (b, 1.0)]))
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    step = med["step_off"]
    out["seconds"] = med
    out["ratio_to_step"] = {k: v / step for k, v in med.items()}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
