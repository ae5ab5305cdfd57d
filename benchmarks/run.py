#!/usr/bin/env python
"""sdedge against raw openvino-genai, the peers and the physical limit, in one run (docs/BENCHMARKS.md).

    python benchmarks/run.py --quick     # smoke test of the tiny fixture model: about QUICK_SECONDS s
    python benchmarks/run.py             # the full run on the random-weight SD 1.5 model

Every contender runs the same prompt, size, steps, seed, sampler, decoder and OpenVINO settings, one
after another (never two at once: they would share the cores), in rounds whose order rotates; the
table shows medians. `--quick` checks that every part runs, on a 64x64 model of a few MB: its
numbers say nothing about speed and it judges no goal. The full run needs the model that
`python scripts/make_full_model.py` builds, and the `convert` extra for the peers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import FULL_DIFFUSERS, FULL_MODEL, TINY_MODEL, log
from benchmarks.markdown import CPU_NOTE, render_table, section, write_markdown
from benchmarks.physical_limit import explain
from benchmarks.report import derived, goal_rows, table_rows
from benchmarks.suite import Options, Results, run_bench

QUICK_SECONDS = 60  # measured on the shared 2-core machine: 42-50 s at load 6-10, 28 s quieter
__doc__ = (__doc__ or "").replace("QUICK_SECONDS", str(QUICK_SECONDS))


def parse(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    """Options for --quick or the full run."""
    parser = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: tiny fixture, 64x64, no peers, no verdicts; about {QUICK_SECONDS} s")
    parser.add_argument("--model", type=Path, help=f"OpenVINO model folder (default {FULL_MODEL})")
    parser.add_argument("--diffusers-model", type=Path, help=f"diffusers folder of the same weights ({FULL_DIFFUSERS})")
    parser.add_argument("--size", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--repeats", type=int, help="interleaved rounds (default 5; --quick 3)")
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--diffusers-steps", type=int, default=2, help="steps of the few-step runs (>= 1)")
    parser.add_argument("--diffusers-repeats", type=int, default=2, help="rounds of the few-step runs")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, help="run optimum-intel and diffusers")
    parser.add_argument("--peer-python", help="interpreter with the convert extra for the peers "
                        "(default: SDEDGE_BENCH_PEER_PYTHON or this one)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a server setting (repeatable); FAST_DECODER and OV_* apply to every contender")
    parser.add_argument("--write", type=Path, metavar="MD", help="write the results into this markdown file")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also dump every measurement as JSON")
    parser.add_argument("--section", default="", help="with --write: a named section (e.g. a before/after run)")
    args = parser.parse_args(argv)
    quick = args.quick
    model = args.model or (TINY_MODEL if quick else FULL_MODEL)
    if not (model / "unet" / "openvino_model.xml").is_file():
        parser.error(f"no OpenVINO model at {model}; build it with: python scripts/make_full_model.py")
    if args.diffusers_steps < 1:
        parser.error("--diffusers-steps must be at least 1")
    diffusers_model = args.diffusers_model or (None if quick or args.model else FULL_DIFFUSERS)
    opts = Options(model=model, size=args.size or (64 if quick else 512), steps=args.steps or (4 if quick else 20),
                   repeats=args.repeats or (3 if quick else 5), guidance=args.guidance, seed=args.seed,
                   peers=not quick if args.peers is None else args.peers, diffusers_model=diffusers_model,
                   diffusers_steps=args.diffusers_steps, diffusers_repeats=args.diffusers_repeats,
                   health_steps=30 if quick else 5, quick=quick,
                   server_env=dict(item.split("=", 1) for item in args.server_env), peer_python=args.peer_python)
    return opts, args


def body(res: Results, quick: bool) -> list[str]:
    """The tables and the notes around them."""
    w = res.work
    loads = ", ".join(f"{k} {v:.1f} s" for k, v in res.loads.items())
    intro = ("**Smoke test of the tiny fixture model** (a few MB, 64x64): it checks that every part runs; "
             "its times say nothing about speed, so no goal is judged." if quick else "")
    precision = res.peak.openvino_precision if res.peak else "?"
    return [*([intro, ""] if intro else []),
            (f"Workload: {w.width}x{w.height}, {w.steps} steps, guidance {w.guidance_scale}, seed {w.seed}, "
             f"{w.sampler}, prompt \"{w.prompt}\"; {len(res.raw)} rounds, order rotated, medians; the run took "
             f"{res.seconds:.0f} s. Load times: {loads}."), "",
            CPU_NOTE.format(precision=precision), "",
            render_table(table_rows(res), ("measure", "value", "detail")), "",
            "Physical limit of the UNet step:", "",
            *(f"    {line}" for line in (explain(res.peak, res.flops_per_step, derived(res)["unet_ms"])
                                         if res.peak else [])), "",
            render_table(goal_rows(res, quick), ("goal (issue 7)", "target", "measured", "verdict"))]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables, optionally write the markdown; returns the exit code."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    opts, args = parse(args_list)
    if opts.quick:
        log(f"smoke test of the tiny model (about {QUICK_SECONDS} s): no speed figure or goal verdict here")
    started = time.perf_counter()
    res = run_bench(opts)
    res.seconds = time.perf_counter() - started
    print("\n".join(body(res, opts.quick)))
    log(f"done in {res.seconds:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"options": asdict(opts), "results": asdict(res), "derived": derived(res)},
                                        indent=1, default=str), encoding="utf-8")
    if args.write:
        command = " ".join(["python benchmarks/run.py", *args_list])
        write_markdown(args.write, section(body(res, opts.quick), command, args.section), args.section)
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
