#!/usr/bin/env python
"""Model switching under MAX_LOADED_MODELS=1: memory and time, side by side in one run.

Each scenario runs in a fresh Python process (so one scenario's peak memory is not another's):

- ``one``: model A loaded, one image: the peak resident memory (VmHWM) of one model.
- ``once``: A, one image, switch to B, one image: one model loaded plus one switching (the reference).
- ``roundtrips``: A→B→A ... N times (2N switches), one image after each, through sdedge's EnginePool with
  max_loaded=1 (the LRU unloads the old model before loading the new one): its peak must stay within
  10% of ``once`` (no growth from switching), and the resident memory after each unload is recorded.
- ``warm-a``, ``warm-b``: one model unloaded and loaded again N times (the unload timed too, as in a
  switch): a warm load (compile cache and page cache warm) of the same model, to set a switch into it against.

    python benchmarks/model_switch.py                              # tiny SD 1.5 vs tiny SDXL fixtures
    python benchmarks/model_switch.py --a FOLDER_A --b FOLDER_B --size 512 --roundtrips 10

The defaults are the tiny fixtures (a few MB): the figures then show the mechanism (memory returns,
no growth), not the costs of full-size models. Pass full-size folders (scripts/make_full_model.py
builds a random SD 1.5) where the machine has the memory and time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MB = 1024 * 1024


def _scenario(args: argparse.Namespace) -> dict[str, Any]:
    """Run one scenario in this process and return its figures."""
    sys.path.insert(0, str(ROOT))
    from sdedge.engine.openvino import OpenVINOEngine
    from sdedge.engine.params import GenerationParams
    from sdedge.engine.pool import EnginePool, peak_rss_bytes, rss_bytes

    folders = {"a": Path(args.a), "b": Path(args.b)}
    params = GenerationParams("a lighthouse", "", args.size, args.size, args.steps, 1.0, "euler", 1)

    def build(model_id: str, report: Any) -> Any:
        props = {"CACHE_DIR": str(Path(args.cache) / model_id), "PERFORMANCE_HINT": "LATENCY"}
        return OpenVINOEngine(folders[model_id], "CPU", properties=props)

    pool = EnginePool(max_loaded=1)
    baseline = rss_bytes()
    times: list[dict[str, Any]] = []
    after_unload: list[int] = []

    def use(model_id: str, reload: bool = False) -> None:
        started = time.perf_counter()
        unloading = pool.loaded_ids()
        if reload:  # a warm load pays the same unload a switch pays, just of the same model
            pool.unload(model_id)
        engine = pool.get(model_id, build)
        loaded = time.perf_counter() - started
        engine.generate(params)
        times.append({"model": model_id, "load_s": loaded, "switch": bool(unloading) and not reload})
        if pool.last_unload is not None:
            after_unload.append(pool.last_unload["freed_bytes"])

    order = {"one": ["a"], "once": ["a", "b"], "roundtrips": ["a"] + ["b", "a"] * args.roundtrips}.get(args.scenario)
    if order is not None:
        for model_id in order:
            use(model_id)
    else:  # warm-a / warm-b: the same model loaded again and again (unloaded in between)
        model_id = args.scenario[-1]
        for _ in range(args.roundtrips + 1):
            use(model_id, reload=True)
    before_last_unload = rss_bytes()
    pool.unload_all()
    return {"scenario": args.scenario, "peak_rss": peak_rss_bytes(), "baseline_rss": baseline,
            "rss_loaded_end": before_last_unload, "rss_after_unload_all": rss_bytes(), "loads": times,
            "freed_per_unload": after_unload}


def _run(scenario: str, args: argparse.Namespace, cache: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--scenario", scenario, "--a", args.a, "--b", args.b, "--size",
               str(args.size), "--steps", str(args.steps), "--roundtrips", str(args.roundtrips), "--cache", cache]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def _report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    one, once, trips = (results[k] for k in ("one", "once", "roundtrips"))
    switches = {m: [t["load_s"] for t in trips["loads"] if t["switch"] and t["model"] == m] for m in "ab"}
    warm = {m: [t["load_s"] for t in results[f"warm-{m}"]["loads"][1:]] for m in "ab"}  # the first may compile
    ratio = {m: statistics.median(switches[m]) / statistics.median(warm[m]) for m in "ab"}
    peak_ratio = trips["peak_rss"] / once["peak_rss"]
    freed = trips["freed_per_unload"]
    rows = [
        ("models", f"A = {Path(args.a).name}, B = {Path(args.b).name}; {args.size}x{args.size}, {args.steps} step(s)"),
        ("peak RSS, one model (A)", f"{one['peak_rss'] / MB:.0f} MB"),
        ("peak RSS, one model + one switch (A→B)", f"{once['peak_rss'] / MB:.0f} MB"),
        (f"peak RSS, A→B→A x{args.roundtrips} ({sum(map(len, switches.values()))} switches)",
         f"{trips['peak_rss'] / MB:.0f} MB = {peak_ratio:.3f}x one switch (goal ≤ 1.10x)"),
        ("RSS returned per unload (median)", f"{statistics.median(freed) / MB:.0f} MB" if freed else "-"),
        ("RSS before the first load / after unloading all", f"{trips['baseline_rss'] / MB:.0f} MB / "
                                                            f"{trips['rss_after_unload_all'] / MB:.0f} MB"),
        *((f"switch into {m.upper()} (unload the other + load {m.upper()}, median) / warm load of {m.upper()} "
           "(median)", f"{statistics.median(switches[m]):.3f} s / {statistics.median(warm[m]):.3f} s = "
                       f"{ratio[m]:.2f}x (goal ≤ 1.5x)") for m in "ab"),
    ]
    return "\n".join(["| figure | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", default=str(FIXTURES / "tiny-sd-int8-ov"))
    parser.add_argument("--b", default=str(FIXTURES / "tiny-sdxl-int8-ov"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--roundtrips", type=int, default=10)
    parser.add_argument("--scenario", choices=("one", "once", "roundtrips", "warm-a", "warm-b"))
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    if args.scenario:
        print(json.dumps(_scenario(args)))
        return 0
    with tempfile.TemporaryDirectory(prefix="sdedge-switch-cache-") as cache:
        _run("once", args, cache)  # fills the compile caches, so no scenario below pays a first compile
        results = {name: _run(name, args, cache) for name in ("one", "once", "roundtrips", "warm-a", "warm-b")}
    print(_report(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
