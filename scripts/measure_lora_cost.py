#!/usr/bin/env python
"""Measure what LoRA costs through openvino-genai, as ratios to one denoising step of the same run.

One InpaintingPipeline built with sdedge's filler adapter (Text2ImagePipeline derived from it, as the
server does), two seeded random kohya LoRAs shaped for the model (all attention-block layers and the
text encoder, like a kohya default training). Figures (medians over --rounds):

- step: UNet step with LoRA enabled but off, with one LoRA, and on a plain pipeline (no adapters);
- first use: reading + rewriting the file (prepare_lora) and wrapping it as an Adapter, then the extra
  time of the first generate() that applies it;
- switch: extra time of a generate() after changing LoRA (A -> B), changing only a weight, turning
  LoRA off, adding a second LoRA and going back to one - each against an unchanged generate() right
  after it, on --apply-size images (applying adapters costs the same at any size). "cold" values are
  the first round's: genai compiles a small helper model per new combination of LoRA shapes.

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


def memory(model: Path, variant: str, size: int, steps: int, rank: int, coverage: str) -> dict[str, Any]:
    """Peak RSS of one pipeline variant after one generate()."""
    import openvino_genai as g

    if variant == "plain":
        pipe, adapters = g.Text2ImagePipeline(g.InpaintingPipeline(model, "CPU")), None
    else:
        cache = AdapterCache(model, coverage=coverage)
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
    return {"variant": variant, "coverage": coverage, "size": size, "peak_rss_after_build_gib": built,
            "peak_rss_gib": peak_rss_gib()}


def main(argv: list[str] | None = None) -> int:
    """Build the pipelines, run the rounds, print a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=2, help="steps per generate (>= 2)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--apply-size", type=int, default=64, help="image size for timing adapter changes")
    parser.add_argument("--memory", choices=["plain", "enabled", "lora"])
    parser.add_argument("--coverage", choices=["all", "attention"], default="all", help="layers the filler enables")
    parser.add_argument("--without-plain", action="store_true",
                        help="no plain pipeline beside the LoRA one (half the memory; no off/plain step ratio)")
    args = parser.parse_args(argv)
    if args.memory:
        print(json.dumps(memory(args.model, args.memory, args.size, args.steps, args.rank, args.coverage)))
        return 0
    import openvino_genai as g

    out: dict[str, Any] = {"model": str(args.model), "size": args.size, "steps": args.steps, "rank": args.rank,
                           "apply_size": args.apply_size, "coverage": args.coverage}
    started = time.perf_counter()
    plain_t2i = None if args.without_plain else g.Text2ImagePipeline(g.InpaintingPipeline(args.model, "CPU"))
    out["build_plain_s"] = time.perf_counter() - started
    started = time.perf_counter()
    cache = AdapterCache(args.model, coverage=args.coverage)
    out["filler_s"] = time.perf_counter() - started
    started = time.perf_counter()
    t2i = g.Text2ImagePipeline(g.InpaintingPipeline(args.model, "CPU", adapters=cache.enabling_config()))
    out["build_enabled_s"] = time.perf_counter() - started
    selector = LoraSelector(cache)
    rows: dict[str, list[float]] = {}

    def add(key: str, values: list[float]) -> None:
        rows.setdefault(key, []).extend(values)

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for seed in (1, 2):
            path = Path(tmp) / f"lora{seed}.safetensors"
            path.write_bytes(safetensors_bytes(kohya(cache.layers, seed, args.rank, args.rank / 2, in_attention)))
            paths.append(path)
        out["lora_file_mb"] = paths[0].stat().st_size / 1e6

        # Applying adapters costs the same at any image size, so it is timed on small images (little
        # noise), each change against an unchanged generate() right after it.
        def cost(pairs: list[tuple[Any, float]]) -> float:
            changed, _ = run(t2i, args.apply_size, 1, selector.config(pairs))
            same, _ = run(t2i, args.apply_size, 1, selector.config(pairs))
            return changed - same

        for index in range(args.rounds):
            cache.clear()  # the next get() reads and rewrites the files again: a first use
            run(t2i, args.apply_size, 1, selector.config([]))
            started = time.perf_counter()
            a, prepared = cache.get(paths[0], "a")
            add("prepare", [time.perf_counter() - started])
            b, _ = cache.get(paths[1], "b")
            add("first_apply_cold" if index == 0 else "first_apply", [cost([(a, 1.0)])])
            add("switch", [cost([(b, 1.0)])])
            add("weight", [cost([(b, 0.5)])])
            add("off", [cost([])])
            run(t2i, args.apply_size, 1, selector.config([(a, 1.0)]))
            add("second_cold" if index == 0 else "second", [cost([(a, 1.0), (b, 1.0)])])
            add("back_to_one", [cost([(b, 1.0)])])
            # steps at full size, the three variants interleaved
            if plain_t2i is not None:
                add("step_plain", run(plain_t2i, args.size, args.steps)[1])
            add("step_off", run(t2i, args.size, args.steps, selector.config([]))[1])
            add("step_lora", run(t2i, args.size, args.steps, selector.config([(a, 1.0)]))[1])
        out["lora_layers"] = len(prepared.applied)
    med = {k: statistics.median(v) for k, v in rows.items()}
    low = {k: min(v) for k, v in rows.items()}
    step = med["step_off"]
    out["median_s"], out["min_s"] = med, low
    out["ratio_to_step"] = {k: v / step for k, v in med.items()}
    out["step_ratios_min"] = {"lora/off": low["step_lora"] / low["step_off"]}
    if "step_plain" in low:
        out["step_ratios_min"].update({"off/plain": low["step_off"] / low["step_plain"],
                                       "lora/plain": low["step_lora"] / low["step_plain"]})
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
