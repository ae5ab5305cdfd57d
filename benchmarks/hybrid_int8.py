#!/usr/bin/env python
"""Weight-only int8 against hybrid int8 (`sdedge convert SRC OUT --hybrid-int8`), in the server a user runs.

    python benchmarks/hybrid_int8.py ~/.cache/sdedge/sd15-random-int8-ov ~/.cache/sdedge/sd15-random-hybrid-int8-ov \
        [--size 512 --steps 10 --rounds 3 --decoder full|tiny] [--write docs/BENCHMARKS.md]

Both models are served by `sdedge serve` processes started side by side with the same settings; rounds
alternate which one generates first (one 512x512 CFG image per server per round, after a warm-up). It
reports seconds per image, the UNet's mean call, the VAE decode and the servers' peak RSS (VmHWM), each
as medians with the hybrid/weight-only ratio, and which precision OpenVINO computes in on this CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import NEGATIVE, PROMPT, Workload, log, median, ratio  # noqa: E402
from benchmarks.markdown import render_table, section, write_markdown  # noqa: E402
from benchmarks.server import SdedgeServer  # noqa: E402

SECTION = "hybrid-int8"
GB = 1e9


def cpu_precision() -> str:
    """The precision OpenVINO's CPU plugin computes float layers in here (f32 on AVX2-only CPUs)."""
    import openvino as ov

    hint = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    return hint.to_string() if hasattr(hint, "to_string") else str(hint)


def measure(models: dict[str, Path], work: Workload, rounds: int, env: dict[str, str]) -> dict[str, dict[str, list[float]]]:
    """Start one server per model, warm each up, then `rounds` interleaved images; figures per model."""
    figures: dict[str, dict[str, list[float]]] = {name: {"seconds": [], "unet_ms": [], "vae_ms": []} for name in models}
    with tempfile.TemporaryDirectory(prefix="sdedge-hybrid-") as tmp:
        servers = {name: SdedgeServer(path, Path(tmp) / name, Path(tmp) / "cache", work.width, env)
                   for name, path in models.items()}
        try:
            for name, server in servers.items():
                log(f"{name}: started in {server.start():.1f} s; warm-up image")
                server.image(work.with_steps(1))
            order = list(servers)
            for round_ in range(rounds):
                for name in order if round_ % 2 == 0 else reversed(order):
                    run = servers[name].image(work)
                    figures[name]["seconds"].append(run.seconds)
                    figures[name]["unet_ms"].append(run.stages.get("unet_ms", float("nan")))
                    figures[name]["vae_ms"].append(run.stages.get("vae_decoder_ms", float("nan")))
                    log(f"round {round_ + 1}: {name} {run.seconds:.1f} s")
            for name, server in servers.items():
                figures[name]["peak_rss"] = [float(server.peak_rss() or 0)]
        finally:
            for server in servers.values():
                server.stop()
    return figures


def report(figures: dict[str, dict[str, list[float]]], work: Workload, rounds: int, decoder: str,
           shapes: str) -> list[str]:
    """The markdown lines: one row per figure, the two models side by side, and the ratio."""
    base, hybrid = figures["weight-only int8"], figures["hybrid int8"]

    def row(label: str, key: str, scale: float, unit: str) -> list[str]:
        a, b = median(base[key]), median(hybrid[key])
        cell = (lambda v: "n/a" if v is None else f"{v / scale:.2f} {unit}")
        r = ratio(b, a)
        return [label, cell(a), cell(b), "n/a" if r is None else f"{r:.3f}x"]

    rows = [row("seconds per image", "seconds", 1, "s"), row("UNet call (mean)", "unet_ms", 1000, "s"),
            row("VAE decode", "vae_ms", 1000, "s"), row("server peak RSS (VmHWM)", "peak_rss", GB, "GB")]
    return [f"{work.width}x{work.height}, {work.steps} steps, CFG {work.guidance_scale}, {decoder} decoder, {shapes}, "
            f"{rounds} rounds (medians); OpenVINO computes float layers in {cpu_precision()} on this CPU.", "",
            render_table(rows, ["figure", "weight-only int8", "hybrid int8", "hybrid / weight-only"])]


def main(argv: list[str] | None = None) -> int:
    """Measure, print the section, optionally write it into docs/BENCHMARKS.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weight_only", type=Path)
    parser.add_argument("hybrid", type=Path)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decoder", choices=("full", "tiny"), default="full")
    parser.add_argument("--static", action="store_true", help="CPU_STATIC_SHAPES=true for both servers")
    parser.add_argument("--write", type=Path, help="replace the hybrid-int8 section of this markdown file")
    args = parser.parse_args(argv)
    work = Workload(PROMPT, NEGATIVE, args.size, args.size, args.steps, 1, 7.5)
    env = {"FAST_DECODER": "true" if args.decoder == "tiny" else "false", "PREVIEW_DECODER": "approx",
           "CPU_STATIC_SHAPES": "true" if args.static else "false"}
    models = {"weight-only int8": args.weight_only.resolve(), "hybrid int8": args.hybrid.resolve()}
    figures = measure(models, work, args.rounds, env)
    command = "python benchmarks/hybrid_int8.py " + " ".join(argv if argv is not None else sys.argv[1:])
    shapes = "static shapes (CPU_STATIC_SHAPES=true)" if args.static else "dynamic shapes (CPU_STATIC_SHAPES=false)"
    text = section(report(figures, work, args.rounds, args.decoder, shapes), command, SECTION + ("-static" if args.static else ""))
    print(text)
    if args.write:
        write_markdown(args.write, text, SECTION + ("-static" if args.static else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
