"""`sdedge bench`: sdedge against raw openvino-genai, the peers and the hardware floor, in one run.

Every contender runs the same prompt, size, steps and seed, one after another (never two at once:
they would share the same cores), in interleaved rounds (A, B, C, A, B, C, ...); the table shows
medians. `--quick` runs on the tiny test fixture in well under a minute; the full run needs the
random-weight SD 1.5 model that `python scripts/make_full_model.py` builds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

from sdedge.bench_peers import (
    PeerProcess,
    RawGenai,
    Run,
    Server,
    Workload,
    ir_flops,
    matmul_flops_per_second,
    median,
    percentile,
    vm_hwm_bytes,
)

FIXTURE = Path("tests") / "fixtures" / "tiny-sd-int8-ov"


def tiny_model() -> Path:
    """The test fixture: beside the source tree (editable install) or under the working folder (repo clone)."""
    beside_source = Path(__file__).resolve().parent.parent / FIXTURE
    return beside_source if beside_source.is_dir() else Path.cwd() / FIXTURE


FULL_MODEL = Path.home() / ".cache" / "sdedge" / "sd15-random-int8-ov"
FULL_DIFFUSERS = Path.home() / ".cache" / "sdedge" / "sd15-random-diffusers"
ANALYTIC_GFLOP_512 = 803.0  # UNet FLOPs per sample at 512x512 (anchors.md); CFG doubles it per step
PROMPT = "a lighthouse on a cliff at dawn, oil painting"
NEGATIVE = "blurry, low detail"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def markers(section: str = "") -> tuple[str, str]:
    """The comment lines around a measured section of the markdown file (--section names one)."""
    return (BEGIN, END) if not section else (f"<!-- bench:{section}:begin -->", f"<!-- bench:{section}:end -->")


@dataclass
class Options:
    """What to run; --quick and the full run differ only here."""

    model: Path
    size: int
    steps: int
    repeats: int
    guidance: float
    seed: int
    peers: bool
    diffusers_model: Path | None
    diffusers_steps: int
    diffusers_repeats: int
    health_steps: int
    peak_seconds: float
    peak_shape: tuple[int, int, int]
    server_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Results:
    """Everything measured; lists hold one entry per round."""

    work: Workload
    raw: list[Run] = field(default_factory=list)
    image: list[Run] = field(default_factory=list)
    job: list[Run] = field(default_factory=list)
    optimum: list[Run] = field(default_factory=list)
    diffusers: list[Run] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    peaks: list[float] = field(default_factory=list)
    peak_f32: float | None = None
    flops_per_step: float = 0.0
    vae_flops: float = 0.0
    first_image: list[float] = field(default_factory=list)
    cold_s: float | None = None
    warm_s: float | None = None
    health_ms: list[float] = field(default_factory=list)
    rss: dict[str, int | None] = field(default_factory=dict)
    raw_short: list[Run] = field(default_factory=list)
    nocfg: list[Run] = field(default_factory=list)
    load_average: list[float] = field(default_factory=list)
    loads: dict[str, float] = field(default_factory=dict)


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- running --------------------------------------------------------------------------------------
def measure_floor(opts: Options, res: Results) -> None:
    """UNet FLOPs per step from the IR (batch 2 with CFG) and one matmul burst."""
    batch = 2 if opts.guidance > 1.0 else 1
    res.flops_per_step = ir_flops(opts.model / "unet" / "openvino_model.xml", opts.size, opts.size, batch)
    res.vae_flops = ir_flops(opts.model / "vae_decoder" / "openvino_model.xml", opts.size, opts.size, 1)
    res.peak_f32 = matmul_flops_per_second(opts.peak_seconds, *opts.peak_shape, precision="f32")
    log(f"UNet {res.flops_per_step / 1e9:.1f} GFLOP per step")


def start_server(opts: Options, tmp: Path, res: Results) -> Server:
    """Start twice on one MODELS_CACHE_DIR (empty, then warm); keep the second server running."""
    cache = tmp / "models"
    cold = Server(opts.model, tmp / "cold", cache, opts.size, opts.server_env)
    try:
        res.cold_s = cold.start()
    finally:
        cold.stop()
    log(f"cold start {res.cold_s:.1f} s")
    server = Server(opts.model, tmp / "warm", cache, opts.size, opts.server_env)
    res.warm_s = server.start()
    log(f"warm start {res.warm_s:.1f} s")
    return server


def run_rounds(contenders: dict[str, Callable[[Workload], Run]], opts: Options, res: Results) -> None:
    """One 1-step warm-up each, then `repeats` interleaved rounds with a matmul burst before each."""
    for name, run in contenders.items():
        log(f"warm-up {name}")
        seconds = run(res.work.with_steps(1)).seconds
        if name == "image":  # the first image after ready, then a second one: what a start-up warm-up saves
            res.first_image = [seconds, run(res.work.with_steps(1)).seconds]
    for round_no in range(opts.repeats):
        res.peaks.append(matmul_flops_per_second(opts.peak_seconds, *opts.peak_shape))
        for name, run in contenders.items():
            result = run(res.work)
            getattr(res, name).append(result)
            res.load_average.append(os.getloadavg()[0])  # how busy the shared machine was
            log(f"round {round_no + 1}/{opts.repeats} {name}: {result.seconds:.2f} s")


def run_main(raw: RawGenai, server: Server, opts: Options, tmp: Path, res: Results) -> None:
    """Interleaved rounds of raw genai, /image, the job and optimum; /health under load; peak RSS."""
    contenders: dict[str, Callable[[Workload], Run]] = {"raw": raw.run, "image": server.image, "job": server.job}
    optimum = PeerProcess("optimum", opts.model, tmp / "optimum.log") if opts.peers else None
    try:
        if optimum is None:
            res.skipped["optimum"] = "skipped (--quick)"
        elif optimum.error:
            res.skipped["optimum"] = optimum.error
        else:
            res.loads["optimum"] = optimum.load_seconds
            contenders["optimum"] = optimum.run
        run_rounds(contenders, opts, res)
        res.health_ms = server.health_during_job(res.work.with_steps(opts.health_steps))
        res.rss["server"] = server.peak_rss()
        res.rss["optimum"] = optimum.peak_rss() if optimum and not optimum.error else None
    finally:
        if optimum:
            optimum.close()


def run_short(raw: RawGenai, opts: Options, tmp: Path, res: Results) -> None:
    """Few-step runs, alternated: raw genai with CFG, raw at guidance 1, diffusers fp32 (own process)."""
    short = res.work.with_steps(opts.diffusers_steps)
    nocfg = replace(short, guidance_scale=1.0, negative_prompt="")
    plan: list[tuple[list[Run], Callable[[Workload], Run], Workload]] = [(res.raw_short, raw.run, short),
                                                                          (res.nocfg, raw.run, nocfg)]
    peer = None
    if not opts.peers or opts.diffusers_model is None:
        res.skipped["diffusers"] = "skipped (--quick)" if not opts.peers else "no diffusers folder"
    else:
        peer = PeerProcess("diffusers", opts.diffusers_model, tmp / "diffusers.log")
        res.skipped.update({"diffusers": peer.error} if peer.error else {})
        if not peer.error:
            res.loads["diffusers"] = peer.load_seconds
            peer.run(short.with_steps(1))
            plan.append((res.diffusers, peer.run, short))
    try:
        for _ in range(opts.diffusers_repeats):
            for runs, run, work in plan:
                runs.append(run(work))
                res.load_average.append(os.getloadavg()[0])  # how busy the shared machine was
        log(f"short runs done: diffusers {[round(r.seconds, 1) for r in res.diffusers]} s")
        res.rss["diffusers"] = peer.peak_rss() if peer and not peer.error else None
    finally:
        if peer:
            peer.close()


def run_bench(opts: Options) -> Results:
    """The whole measurement, strictly one contender at a time."""
    res = Results(Workload(PROMPT, NEGATIVE, opts.size, opts.size, opts.steps, opts.seed, opts.guidance))
    with tempfile.TemporaryDirectory(prefix="sdedge-bench-") as tmp_name:
        tmp = Path(tmp_name)
        measure_floor(opts, res)
        server = start_server(opts, tmp, res)
        try:
            raw = RawGenai(opts.model)
            res.loads["raw"] = raw.load_seconds
            run_main(raw, server, opts, tmp, res)
        finally:
            server.stop()
        run_short(raw, opts, tmp, res)  # the server and optimum have ended: room for torch
    res.rss["bench"] = vm_hwm_bytes(os.getpid())
    return res


# -- reporting ------------------------------------------------------------------------------------
def _med(runs: list[Run], key: str | None = None) -> float | None:
    """Median wall seconds, or of one stage."""
    return median([r.seconds if key is None else r.stages[key] for r in runs if key is None or key in r.stages])


def _fmt(value: float | None, unit: str, scale: float = 1.0, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value * scale:.{digits}f} {unit}".strip()


def _spread(values: list[float]) -> str:
    return f"min {min(values):.1f}, median {median(values):.1f}, max {max(values):.1f}" if values else "n/a"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def extrapolate(runs: list[Run], count_key: str, steps: int) -> tuple[float | None, float | None]:
    """(seconds extrapolated to `steps`, seconds per step) from few-step runs: total + (steps - n) * step."""
    total, step, count = _med(runs), _med(runs, "unet_step_ms"), _med(runs, count_key)
    if total is None or step is None or count is None:
        return None, None
    return total + (steps - count) * step / 1000, step / 1000


def derived(res: Results) -> dict[str, float | None]:
    """The figures the goals and the table are built from."""
    raw, image, job = _med(res.raw), _med(res.image), _med(res.job)
    sdedge = max(v for v in (image, job) if v is not None) if image or job else None
    diffusers_total, _ = extrapolate(res.diffusers, "steps", res.work.steps)
    raw_short_total, _ = extrapolate(res.raw_short, "unet_calls", res.work.steps)
    peak = median(res.peaks)
    floor_ms = 1000 * res.flops_per_step / peak if peak else None
    overheads = [r.stages["total_ms"] - r.stages.get("generate_ms", 0) - r.stages.get("save_ms", 0)
                 for r in res.image if "total_ms" in r.stages]
    return {
        "raw": raw, "image": image, "job": job, "optimum": _med(res.optimum), "diffusers": diffusers_total,
        "unet_ms": _med(res.raw, "unet_step_ms"), "floor_ms": floor_ms, "peak": peak,
        "in_server_ms": median(overheads),
        "http_ms": median([1000 * r.seconds - r.stages["total_ms"] for r in res.image if "total_ms" in r.stages]),
        "first_preview_ms": _med(res.job, "first_preview_ms"),
        "health_p50": percentile(res.health_ms, 50), "health_p99": percentile(res.health_ms, 99),
        "rss": float(server_rss) if (server_rss := res.rss.get("server")) else None,
        "sdedge": sdedge,
        # diffusers ran after the rounds: compare it with raw genai runs alternated with it, then scale
        "sdedge_vs_diffusers": _ratio(_ratio(sdedge, raw), _ratio(diffusers_total, raw_short_total)),
        "raw_short_total": raw_short_total,
    }


_s = partial(_fmt, unit="s")
_ms = partial(_fmt, unit="ms", digits=0)


def _paired(runs: list[Run], other: list[Run]) -> str:
    """Per-round ratios against the other contender's run of the same round."""
    return f" (per round: {', '.join(f'{a.seconds / b.seconds:.3f}' for a, b in zip(runs, other))})" if other else ""


def _x(a: float | None, b: float | None) -> str:
    return _fmt(_ratio(a, b), "", digits=3)


def table_rows(res: Results) -> list[tuple[str, str, str]]:
    """(row, value, detail) for every figure; the row names are stable (tests check them)."""
    d, w, gib = derived(res), res.work, 1024.0**3
    d_total, d_step = extrapolate(res.diffusers, "steps", w.steps)
    nocfg, cfg = _med(res.nocfg, "unet_step_ms"), _med(res.raw_short, "unet_step_ms")

    def peer(name: str, value: float | None, note: str, detail: str = "") -> tuple[str, str, str]:
        if name in res.skipped:
            return f"{name} ({note})", res.skipped[name], ""
        return f"{name} ({note})", _s(value), f"sdedge /image / this = {_x(d['image'], value)}{detail}"

    first: list[float | None] = [*res.first_image] or [None, None]
    optimum_rss = float(res.rss.get("optimum") or 0) or None
    diffusers_rss = float(res.rss.get("diffusers") or 0) or None
    overhead = None if d["image"] is None or d["raw"] is None else d["image"] - d["raw"]
    batch = 2 if w.guidance_scale > 1 else 1
    return [
        ("raw genai generate", _s(d["raw"]), f"{w.width}x{w.height}, {w.steps} steps, CFG {w.guidance_scale}"),
        ("sdedge POST /image", _s(d["image"]), f"/ raw = {_x(d['image'], d['raw'])}{_paired(res.image, res.raw)}"),
        ("sdedge job (/generate/text2img)", _s(d["job"]),
         f"/ raw = {_x(d['job'], d['raw'])}{_paired(res.job, res.raw)}"),
        peer("optimum", d["optimum"], "OVStableDiffusionPipeline, same IR", _paired(res.image, res.optimum)),
        peer("diffusers", d_total, "PyTorch fp32, extrapolated",
             f"; {_s(d_step)}/step over {_fmt(_med(res.diffusers, 'steps'), '', digits=0)} steps; raw genai "
             f"alternated with it: {_s(d['raw_short_total'])} extrapolated; load-normalized sdedge / this = "
             f"{_fmt(d['sdedge_vs_diffusers'], '', digits=3)}"),
        ("text encoder", _ms(_med(res.raw, "text_encoder_ms")), "genai metrics, raw run"),
        ("UNet per step", _ms(d["unet_ms"]),
         f"median UNet call; {_fmt(_med(res.raw, 'unet_calls'), '', digits=0)} calls per image"),
        ("UNet per step, guidance 1 (no CFG)", _ms(nocfg),
         f"/ CFG step in alternated runs ({_ms(cfg)}) = {_x(nocfg, cfg)}"),
        ("VAE decode", _ms(_med(res.raw, "vae_decoder_ms")),
         f"{res.vae_flops / 1e9:.0f} GFLOP, floor {_fmt(_ratio(res.vae_flops, d['peak']), 'ms', 1000, 0)}"),
        ("image encode + save", _ms(_med(res.image, "save_ms")), "PNG with infotext, on the worker thread"),
        ("in-server overhead", _ms(d["in_server_ms"]), "/image total - genai generate - save: queue, callbacks, DB"),
        ("HTTP + client overhead", _ms(d["http_ms"]), "/image wall - server total"),
        ("sdedge overhead vs raw", _s(overhead), "median /image - median raw"),
        ("UNet FLOPs per step", _fmt(res.flops_per_step, "GFLOP", 1e-9, 1),
         f"counted on the IR, batch {batch}; analytic at 512: {batch * ANALYTIC_GFLOP_512:.0f}"),
        ("matmul peak (default precision)", _fmt(d["peak"], "GFLOP/s", 1e-9, 0),
         f"f32 hint: {_fmt(res.peak_f32, 'GFLOP/s', 1e-9, 0)}"),
        ("UNet step floor", _ms(d["floor_ms"]), f"UNet step / floor = {_x(d['unet_ms'], d['floor_ms'])}"),
        ("cold start to ready (empty cache)", _fmt(res.cold_s, "s", digits=1), "process start -> /health/ready 200"),
        ("warm start to ready (cached)", _fmt(res.warm_s, "s", digits=1), f"/ cold = {_x(res.warm_s, res.cold_s)}"),
        ("first /image after ready (1 step)", _s(first[0]), f"the next 1-step /image: {_s(first[1])}"),
        ("time to first preview", _fmt(d["first_preview_ms"], "s", 1e-3), "job submit -> preview_url seen"),
        ("server peak RSS", _fmt(d["rss"], "GiB", 1 / gib),
         f"VmHWM; optimum's: {_fmt(optimum_rss, 'GiB', 1 / gib)}, diffusers': {_fmt(diffusers_rss, 'GiB', 1 / gib)}"),
        ("/health latency p50", _fmt(d["health_p50"], "ms", digits=1), f"{len(res.health_ms)} polls during a job"),
        ("/health latency p99", _fmt(d["health_p99"], "ms", digits=1), ""),
        ("load average", _spread(res.load_average), f"1-minute, after each run, {os.cpu_count()} CPUs, shared"),
    ]


def goal_rows(res: Results) -> list[tuple[str, str, str, str]]:
    """(goal, target, measured, verdict) for issue 7's goals."""
    d = derived(res)
    checks = [
        ("sdedge / raw genai", "<= 1.02", _ratio(d["sdedge"], d["raw"]), 1.02),
        ("sdedge / optimum-intel", "<= 1.00", _ratio(d["sdedge"], d["optimum"]), 1.00),
        ("sdedge / diffusers fp32", "<= 0.5", d["sdedge_vs_diffusers"], 0.5),
        ("UNet step / FLOP floor", "<= 1.10", _ratio(d["unet_ms"], d["floor_ms"]), 1.10),
        ("warm start / cold start", "<= 0.33", _ratio(res.warm_s, res.cold_s), 1 / 3),
        ("/health p99 (ms)", "< 50", d["health_p99"], 50.0),
        ("server peak RSS (GB, 10^9 bytes)", "<= 6", d["rss"] / 1e9 if d["rss"] else None, 6.0),
    ]
    verdict = {None: "n/a", True: "met", False: "missed"}
    return [(name, target, _fmt(value, "", digits=3), verdict[None if value is None else value <= limit])
            for name, target, value, limit in checks]


def render_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A markdown table (readable as plain text too)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def _grep(pattern: str, path: str) -> str:
    """First group of pattern in a /proc file, or ""."""
    found = re.search(pattern, Path(path).read_text()) if Path(path).exists() else None
    return found.group(1).strip() if found else ""


def machine() -> str:
    """CPU model and the flags that matter, cores, memory, runtime versions."""
    flags = set(_grep(r"flags\s*:\s*(.*)", "/proc/cpuinfo").split())
    wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    mem_gib = int(_grep(r"MemTotal:\s*(\d+)", "/proc/meminfo") or 0) / 1024**2
    versions = [f"{m} {getattr(__import__(m), '__version__', '?')}" for m in ("openvino", "openvino_genai")]
    cpu = _grep(r"model name\s*:\s*(.*)", "/proc/cpuinfo") or platform.processor()
    return (f"{cpu}, "
            f"{len(os.sched_getaffinity(0))} cores (nproc), flags {' '.join(wanted) or 'none of interest'}; "
            f"{mem_gib:.1f} GiB RAM; Python {platform.python_version()}, {', '.join(versions)}")


def report(res: Results, command: str, section: str = "") -> str:
    """The measured section of docs/BENCHMARKS.md."""
    w, (begin, end) = res.work, markers(section)
    loads = ", ".join(f"{k} {v:.1f} s" for k, v in res.loads.items())
    return "\n".join([
        begin, f"Measured {datetime.date.today().isoformat()} on: {machine()}", "",
        f"Command: `{command}`", "",
        (f"Workload: {w.width}x{w.height}, {w.steps} steps, guidance {w.guidance_scale}, seed {w.seed}, Euler "
         f"ancestral, prompt \"{w.prompt}\"; {len(res.raw)} interleaved rounds, medians. Load times: {loads}."),
        "", render_table(table_rows(res), ("measure", "value", "detail")), "",
        render_table(goal_rows(res), ("goal (issue 7)", "target", "measured", "verdict")), end])


def write_markdown(path: Path, text: str, section: str = "") -> None:
    """Replace one measured section between its markers (or append it), keeping the hand-written rest."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    begin, end = markers(section)
    if begin in old and end in old:
        text = old[: old.index(begin)] + text + old[old.index(end) + len(end):]
    else:
        text = old.rstrip("\n") + "\n\n" + text + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


# -- command line ---------------------------------------------------------------------------------
def parse(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    """Options for --quick or the full run."""
    parser = argparse.ArgumentParser(prog="sdedge bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny fixture, 64x64, no peers: under a minute")
    parser.add_argument("--model", type=Path, help=f"OpenVINO model folder (default {FULL_MODEL})")
    parser.add_argument("--diffusers-model", type=Path, help=f"diffusers folder of the same weights ({FULL_DIFFUSERS})")
    parser.add_argument("--size", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--diffusers-steps", type=int, default=3, help="steps of the diffusers run")
    parser.add_argument("--diffusers-repeats", type=int, default=2, help="alternated few-step rounds")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, help="run optimum-intel and diffusers")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the sdedge server (repeatable), e.g. FAST_DECODER=true")
    parser.add_argument("--write", type=Path, metavar="MD", help="write the results into this markdown file")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also dump every measurement as JSON")
    parser.add_argument("--section", default="", help="with --write: a named section (e.g. a before/after run)")
    args = parser.parse_args(argv)
    quick = args.quick
    model = args.model or (tiny_model() if quick else FULL_MODEL)
    if not (model / "unet" / "openvino_model.xml").is_file():
        parser.error(f"no OpenVINO model at {model}; build it with: python scripts/make_full_model.py")
    diffusers_model = args.diffusers_model or (None if quick or args.model else FULL_DIFFUSERS)
    opts = Options(model=model, size=args.size or (64 if quick else 512), steps=args.steps or (4 if quick else 20),
                   repeats=args.repeats or (2 if quick else 3), guidance=args.guidance, seed=args.seed,
                   peers=not quick if args.peers is None else args.peers, diffusers_model=diffusers_model,
                   diffusers_steps=args.diffusers_steps, diffusers_repeats=args.diffusers_repeats,
                   health_steps=30 if quick else 5, peak_seconds=0.3 if quick else 2.0,
                   peak_shape=(512, 512, 512) if quick else (4096, 2048, 2048),
                   server_env=dict(item.split("=", 1) for item in args.server_env))
    return opts, args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, optionally write the markdown; returns the exit code."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    opts, args = parse(args_list)
    started = time.perf_counter()
    res = run_bench(opts)
    print(render_table(table_rows(res), ("measure", "value", "detail")))
    print()
    print(render_table(goal_rows(res), ("goal (issue 7)", "target", "measured", "verdict")))
    log(f"done in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"options": asdict(opts), "results": asdict(res), "derived": derived(res)},
                                        indent=1, default=str), encoding="utf-8")
    if args.write:
        command = " ".join(["python scripts/bench.py", *args_list])
        write_markdown(args.write, report(res, command, args.section), args.section)
        log(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
