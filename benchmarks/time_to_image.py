#!/usr/bin/env python
"""Issue 17's time-to-image table: seconds per image for three recipes, sdedge against raw genai and optimum.

    python scripts/make_full_model.py          # once: SD 1.5, its LCM-LoRA-shaped LoRAs, SD-Turbo (random weights)
    python benchmarks/time_to_image.py [--size 512] [--rounds 5] [--write docs/BENCHMARKS.md]
    python benchmarks/time_to_image.py --quick # the same cases on the tiny fixture: a smoke test

Cases (each contender with the same steps, guidance, sampler and decoder; rounds rotated, medians):
1. SD 1.5, 20 steps, CFG 7.5, full VAE;
2. SD 1.5 + LCM-LoRA, 4 steps, guidance 1, LCM sampler, tiny decoder (raw genai with the adapter;
   optimum-intel on the base IR, which stands in for the LoRA fused into the weights: same shapes);
3. a one-step family (SD-Turbo: SD 2.1's architecture) at 1 step, guidance 1, tiny decoder;
4. SD 1.5 with LCM-LoRA fused into its weights (`sdedge convert --fuse-lora`, 3x3 convolutions included),
   4 steps, guidance 1, tiny decoder: every contender on the fused folder (run when FUSED_MODEL exists).
A row whose server feature is missing (e.g. the `loras` request field) says so and switches on by
itself once GET /modes lists the field.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (CACHE, FULL_MODEL, PROMPT, TINY_MODEL, ContenderSettings, Run, Workload, log, median,
                               ratio)
from benchmarks.flops import ir_flops
from benchmarks.genai_raw import RawGenai
from benchmarks.markdown import CPU_NOTE, render_table, section, write_markdown
from benchmarks.peers import PeerProcess, variant_folder
from benchmarks.physical_limit import Peak, explain, measure_peak
from benchmarks.server import SdedgeServer
from benchmarks.suite import interleave

TURBO_MODEL = CACHE / "sd-turbo-random-int8-ov"
TINY_LORAS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "loras"
FUSED_MODEL = CACHE / "sd15-random-lcm-fused-int8-ov"  # sdedge convert SD15 OUT --fuse-lora lcm-lora-sdv1-5-random
LORAS = CACHE / "loras"
LORA_NAME = "lcm-lora-sdv1-5-random"
CONTENDERS = ("sdedge", "raw genai", "optimum")
NEEDS = {"loras": "LoRA per request (issue 17 item 1: LORA_DIR and a native `loras` field)"}


@dataclass(frozen=True)
class Case:
    """One recipe of the table."""

    title: str
    model: Path
    work: Workload
    decoder: str
    lora: Path | None = None  # the LoRA as published (3x3-conv parts included)
    lora_genai: Path | None = None  # the part of it openvino-genai can load (see make_full_model.py)
    needs: tuple[str, ...] = ()  # request fields the sdedge row needs from the server


@dataclass
class CaseResult:
    """Runs per contender, and why a contender has none."""

    case: Case
    runs: dict[str, list[Run]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    unet_flops: float = 0.0
    switch: list[float] = field(default_factory=list)  # raw genai: first and second call after a LoRA switch
    warmup: dict[str, float] = field(default_factory=dict)  # seconds of each contender's 1-step warm-up


def cases(size: int, quick: bool, lora_dir: Path) -> list[Case]:
    """The three recipes, on the full-size random models (or all on the tiny fixture with --quick)."""
    sd15, turbo = (TINY_MODEL, TINY_MODEL) if quick else (FULL_MODEL, TURBO_MODEL)
    lora, pointwise = lora_dir / f"{LORA_NAME}.safetensors", lora_dir / f"{LORA_NAME}-pointwise.safetensors"
    if quick:  # the tiny model's own LoRAs: LCM-LoRA's layout (3x3 convs included) and a loadable one
        lora, pointwise = TINY_LORAS / "tiny-lcm-layout.safetensors", TINY_LORAS / "tiny-kohya.safetensors"
    base = Workload(PROMPT, "blurry, low detail", size, size, 20, 42, 7.5, "euler_a")
    fast = Workload(PROMPT, "", size, size, 4, 42, 1.0, "lcm")
    fused = [Case("SD 1.5 + LCM-LoRA fused into the weights, 4 steps, guidance 1, tiny decoder",
                  TINY_MODEL if quick else FUSED_MODEL, fast, "tiny")] if quick or FUSED_MODEL.is_dir() else []
    return [
        Case("SD 1.5, 20 steps, CFG 7.5, full VAE", sd15, base, "full"),
        Case("SD 1.5 + LCM-LoRA, 4 steps, guidance 1, tiny decoder", sd15,
             fast, "tiny",
             lora if lora.is_file() else None, pointwise if pointwise.is_file() else None, ("loras",)),
        Case(f"one-step family ({'tiny fixture' if quick else 'SD-Turbo, SD 2.1 architecture'}), 1 step, "
             "guidance 1, tiny decoder", turbo, Workload(PROMPT, "", size, size, 1, 42, 1.0, "euler_a"), "tiny"),
        *fused,
    ]


def _raw_with_lora(case: Case, settings: ContenderSettings, res: CaseResult) -> RawGenai:
    """Raw genai with the LoRA as published; when genai refuses it, with the part it can load."""
    if case.lora is None:
        res.notes["raw genai"] = "no LoRA file (python scripts/make_full_model.py --only lora): base model"
        return RawGenai(case.model, settings)
    try:
        raw = RawGenai(case.model, settings, lora=case.lora)
        raw.run(case.work.with_steps(1))
        return raw
    except RuntimeError as exc:
        reason = next((line for line in str(exc).splitlines() if "not supported" in line), str(exc)[-200:])
        if case.lora_genai is None:
            raise
        res.notes["raw genai"] = (f"genai refuses the LoRA as published ({reason.strip()}); ran its pointwise "
                                  "part (attention, feed-forward, 1x1 convs)")
        gc.collect()
        return RawGenai(case.model, settings, lora=case.lora_genai)


def _server(case: Case, tmp: Path, res: CaseResult) -> tuple[SdedgeServer | None, dict[str, Any]]:
    """The sdedge server for this case, or None (with a note) when it lacks a feature the case needs."""
    env = {"FAST_DECODER": "true" if case.decoder == "tiny" else "false"}
    if case.lora is not None:
        env["LORA_DIR"] = str(case.lora.parent)
    server = SdedgeServer(case.model, tmp / "server", tmp / "models", case.work.width, env)
    server.start()
    fields = server.fields()  # /modes lists the form's fields; LoRA has its own listing (GET /loras)
    missing = [name for name in case.needs if name not in fields and server.request("GET", f"/{name}")[0] != 200]
    if missing:
        server.stop()
        res.notes["sdedge"] = "needs server support for " + "; ".join(NEEDS.get(m, m) for m in missing)
        return None, {}
    extra: dict[str, Any] = {}
    if "loras" in case.needs and case.lora is not None:
        extra["loras"] = [{"name": case.lora.stem, "weight": 1.0}]
        res.notes["sdedge"] = ("the LoRA as published; sdedge leaves out its 3x3-conv parts (genai cannot adapt them) "
                               "and applies the rest, as raw genai's pointwise part")
    return server, extra


def run_case(case: Case, rounds: int, tmp: Path, peer_python: str | None) -> CaseResult:
    """Load every contender of one case, warm each up, then rotated rounds; everything is freed after."""
    res = CaseResult(case)
    tmp.mkdir(parents=True, exist_ok=True)
    batch = 2 if case.work.guided else 1
    res.unet_flops = ir_flops(case.model / "unet" / "openvino_model.xml", case.work.width, case.work.height, batch)
    settings = ContenderSettings(case.decoder, {"PERFORMANCE_HINT": "LATENCY"})
    raw = _raw_with_lora(case, settings, res) if "loras" in case.needs else RawGenai(case.model, settings)
    contenders: dict[str, Callable[[Workload], Run]] = {"raw genai": raw.run}
    server, extra = _server(case, tmp, res)
    if server is not None:
        contenders["sdedge"] = lambda work: server.image(work, extra)
    optimum = PeerProcess("optimum", variant_folder(case.model, case.decoder, tmp), tmp / "optimum.log", settings,
                          peer_python)
    if optimum.error:
        res.notes["optimum"] = optimum.error
    else:
        contenders["optimum"] = optimum.run
        if case.lora is not None:
            res.notes["optimum"] = "base IR: stands in for the LoRA fused into the weights (same shapes and FLOPs)"
    try:
        for name, run in list(contenders.items()):
            log(f"{case.title}: warm-up {name}")
            try:
                res.warmup[name] = run(case.work.with_steps(1)).seconds
            except RuntimeError as exc:  # one contender that cannot run this case must not lose the others
                res.notes[name] = f"could not run: {str(exc).splitlines()[0][:200]}"
                del contenders[name]
        interleave(contenders, dict.fromkeys(contenders, case.work), rounds,
                   lambda name, run: res.runs.setdefault(name, []).append(run))
        if raw.adapters is not None and case.lora_genai is not None:
            other = Path(str(case.lora_genai).replace(LORA_NAME, LORA_NAME + "-b"))
            if other.is_file():  # the cost of switching to another LoRA, per call, no recompilation
                config = raw.adapter_config(other)
                res.switch = [raw.run(case.work, config).seconds, raw.run(case.work, config).seconds]
    finally:
        optimum.close()
        if server is not None:
            server.stop()
    return res


def _med(runs: list[Run]) -> float | None:
    return median([r.seconds for r in runs])


def _unet(runs: list[Run]) -> float | None:
    return median([r.stages.get("unet_mean_ms", r.stages.get("unet_ms", 0.0)) for r in runs]) if runs else None


def rows(results: list[CaseResult], peak: Peak | None) -> list[list[str]]:
    """One row per case and contender: seconds, ratios, the UNet call against the physical limit."""
    top = peak.flops(peak.openvino_precision) if peak else None
    first = results[0] if results and results[0].case.work.steps == 20 else None  # case 1 ran
    reference = {name: _med(first.runs.get(name, [])) for name in CONTENDERS} if first else {}
    out = []
    for res in results:
        raw, optimum = _med(res.runs.get("raw genai", [])), _med(res.runs.get("optimum", []))
        for name in CONTENDERS:
            runs = res.runs.get(name, [])
            seconds, unet = _med(runs), _unet(runs)
            floor_ms = 1000 * res.unet_flops / top if top else None
            cell = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731 - a local formatter
            out.append([res.case.title, name, "n/a" if seconds is None else f"{seconds:.2f} s",
                        cell(ratio(seconds, raw)) if name != "raw genai" else "1",
                        cell(ratio(seconds, optimum)) if name != "optimum" else "1",
                        cell(ratio(seconds, reference.get(name))),
                        "n/a" if unet is None else f"{unet:.0f} ms",
                        "n/a" if unet is None or floor_ms is None else f"{floor_ms / unet:.0%}",
                        res.notes.get(name, "")])
    return out


def goals(results: list[CaseResult]) -> list[list[str]]:
    """Issue 17's goals, per contender where the contender ran."""
    checks: list[list[str]] = []
    if len(results) < 3:
        return checks
    for name in CONTENDERS:
        base = _med(results[0].runs.get(name, []))
        for res, target in ((results[1], 0.10), (results[2], 0.03), *((r, 0.10) for r in results[3:4])):
            value = ratio(_med(res.runs.get(name, [])), base)
            checks.append([f"{name}: {res.case.title} / SD 1.5 20-step", f"<= {target:.2f}",
                           "n/a" if value is None else f"{value:.3f}",
                           "n/a" if value is None else ("met" if value <= target else "missed")])
    for res in results:
        s, raw, opt = (_med(res.runs.get(n, [])) for n in CONTENDERS)
        for other, value, target in (("raw genai", ratio(s, raw), 1.02), ("optimum", ratio(s, opt), 1.00)):
            checks.append([f"sdedge / {other}: {res.case.title}", f"<= {target:.2f}",
                           "n/a" if value is None else f"{value:.3f}",
                           "n/a" if value is None else ("met" if value <= target else "missed")])
    return checks


def body(results: list[CaseResult], peak: Peak | None, quick: bool, seconds: float) -> list[str]:
    """Tables and notes."""
    header = ("case", "contender", "per image", "/ raw genai", "/ optimum", "/ SD 1.5 20-step (same contender)",
              "UNet per call", "physical limit / UNet call", "note")
    switch = [f"LoRA switch (raw genai, {r.case.title}): first call after switching to another LoRA "
              f"{r.switch[0]:.2f} s, the next {r.switch[1]:.2f} s: the switch costs "
              f"{(r.switch[0] - r.switch[1]) / (unet / 1000):.2f} UNet calls" for r in results
              if r.switch and (unet := _unet(r.runs.get("raw genai", [])))]
    switch += [f"sdedge, {r.case.title}: the first LoRA job (1 step) on the plain model took {r.warmup['sdedge']:.2f} s: "
               "it rebuilds the pipelines LoRA-ready (one step of the case's runs: "
               f"{(_med(r.runs.get('sdedge', [])) or 0) / r.case.work.steps:.2f} s)"
               for r in results if r.case.needs and "sdedge" in r.warmup]
    lines = ["**Smoke test on the tiny fixture** (every case on the same tiny model): no verdicts." if quick else "",
             f"The run took {seconds:.0f} s.", "",
             CPU_NOTE.format(precision=peak.openvino_precision if peak else "?"), "",
             render_table(rows(results, peak), header), "", *switch, "",
             *(f"    {line}" for line in (explain(peak) if peak else [])), ""]
    if not quick:
        lines.append(render_table(goals(results), ("goal (issue 17)", "target", "measured", "verdict")))
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the cases one after another; print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="all cases on the tiny fixture, 64x64, 2 rounds")
    parser.add_argument("--size", type=int, help="image size (default 512; --quick 64)")
    parser.add_argument("--rounds", type=int, help="rotated rounds per case (default 5; --quick 2)")
    parser.add_argument("--cases", default="1,2,3,4", help="which cases to run, e.g. 2,3 (the ratios need case 1)")
    parser.add_argument("--lora-dir", type=Path, default=LORAS)
    parser.add_argument("--peer-python", help="interpreter with the convert extra (default SDEDGE_BENCH_PEER_PYTHON)")
    parser.add_argument("--write", type=Path, metavar="MD")
    parser.add_argument("--section", default="time-to-image")
    args = parser.parse_args(argv)
    size, rounds = args.size or (64 if args.quick else 512), args.rounds or (2 if args.quick else 5)
    started = time.perf_counter()
    peak = measure_peak(quick=args.quick)
    results = []
    with tempfile.TemporaryDirectory(prefix="sdedge-tti-") as tmp:
        wanted = {int(n) for n in args.cases.split(",") if n.strip()}
        for number, case in enumerate(cases(size, args.quick, args.lora_dir)):
            if number + 1 not in wanted:
                continue
            results.append(run_case(case, rounds, Path(tmp) / f"case{number}", args.peer_python))
            gc.collect()
    text = body(results, peak, args.quick, time.perf_counter() - started)
    print("\n".join(text))
    if args.write:
        command = " ".join(["python benchmarks/time_to_image.py", *(sys.argv[1:] if argv is None else argv)])
        write_markdown(args.write, section(text, command, args.section), args.section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
