"""The main benchmark run: sdedge against raw genai and the peers, interleaved, one contender at a time."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from benchmarks.common import NEGATIVE, PROMPT, ContenderSettings, Run, Workload, load_average, log, vm_hwm_bytes
from benchmarks.flops import ir_flops
from benchmarks.genai_raw import RawGenai
from benchmarks.peers import PeerProcess, variant_folder
from benchmarks.physical_limit import Peak, measure_peak
from benchmarks.server import SdedgeServer

CFG_REFERENCE = 7.5  # the guidance of the CFG side of the "guidance 1 / CFG step" comparison when --guidance <= 1


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
    quick: bool = False
    server_env: dict[str, str] = field(default_factory=dict)
    peer_python: str | None = None


@dataclass
class Results:
    """Everything measured; lists hold one entry per round."""

    work: Workload
    settings: ContenderSettings = field(default_factory=ContenderSettings)
    raw: list[Run] = field(default_factory=list)
    image: list[Run] = field(default_factory=list)
    job: list[Run] = field(default_factory=list)
    optimum: list[Run] = field(default_factory=list)
    diffusers: list[Run] = field(default_factory=list)
    order: list[list[str]] = field(default_factory=list)  # the contenders' order in each round
    skipped: dict[str, str] = field(default_factory=dict)
    peak: Peak | None = None
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
    seconds: float = 0.0  # the whole run, wall clock


def rotated(names: list[str], round_no: int) -> list[str]:
    """The contenders' order in one round: shifted by one each round, so none always runs first."""
    shift = round_no % len(names) if names else 0
    return names[shift:] + names[:shift]


def interleave(contenders: dict[str, Callable[[Workload], Run]], works: dict[str, Workload], rounds: int,
               sink: Callable[[str, Run], None], order: list[list[str]] | None = None) -> None:
    """`rounds` rounds of every contender once, the order rotated per round; each result to sink(name, run)."""
    for round_no in range(rounds):
        names = rotated(list(contenders), round_no)
        if order is not None:
            order.append(names)
        for name in names:
            result = contenders[name](works[name])
            sink(name, result)
            log(f"round {round_no + 1}/{rounds} {name}: {result.seconds:.2f} s (load {load_average():.1f})")


def measure_floor(opts: Options, res: Results) -> None:
    """UNet FLOPs per call (batch 2 with CFG), the VAE decoder's, and the machine's physical peak."""
    batch = 2 if opts.guidance > 1.0 else 1
    res.flops_per_step = ir_flops(opts.model / "unet" / "openvino_model.xml", opts.size, opts.size, batch)
    res.vae_flops = ir_flops(opts.model / "vae_decoder" / "openvino_model.xml", opts.size, opts.size, 1)
    res.peak = measure_peak(quick=opts.quick)
    log(f"UNet {res.flops_per_step / 1e9:.1f} GFLOP per step; peak {res.peak.derivation()}")


def start_server(opts: Options, tmp: Path, res: Results) -> SdedgeServer:
    """Start twice on one MODELS_CACHE_DIR (empty, then warm); keep the second server running."""
    cache = tmp / "models"
    cold = SdedgeServer(opts.model, tmp / "cold", cache, opts.size, opts.server_env)
    try:
        res.cold_s = cold.start()
    finally:
        cold.stop()
    log(f"cold start {res.cold_s:.1f} s")
    server = SdedgeServer(opts.model, tmp / "warm", cache, opts.size, opts.server_env)
    res.warm_s = server.start()
    log(f"warm start {res.warm_s:.1f} s")
    return server


def warm_up(contenders: dict[str, Callable[[Workload], Run]], res: Results) -> None:
    """One 1-step run each; the server's first two /image are both kept (the first pays for kernel set-up)."""
    for name, run in contenders.items():
        log(f"warm-up {name}")
        seconds = run(res.work.with_steps(1)).seconds
        if name == "image":
            res.first_image = [seconds, run(res.work.with_steps(1)).seconds]


def _record(res: Results) -> Callable[[str, Run], None]:
    def sink(name: str, run: Run) -> None:
        getattr(res, name).append(run)
        res.load_average.append(load_average())

    return sink


def run_main(raw: RawGenai, server: SdedgeServer, opts: Options, tmp: Path, res: Results) -> None:
    """Interleaved rounds of raw genai, /image, the job and optimum; /health under load; peak RSS."""
    contenders: dict[str, Callable[[Workload], Run]] = {"raw": raw.run, "image": server.image, "job": server.job}
    optimum = None
    if opts.peers:
        optimum = PeerProcess("optimum", variant_folder(opts.model, res.settings.decoder, tmp), tmp / "optimum.log",
                              res.settings, opts.peer_python)
    try:
        if optimum is None:
            res.skipped["optimum"] = "skipped (--quick)" if opts.quick else "skipped (--no-peers)"
        elif optimum.error:
            res.skipped["optimum"] = optimum.error
        else:
            res.loads["optimum"] = optimum.load_seconds
            contenders["optimum"] = optimum.run
        warm_up(contenders, res)
        interleave(contenders, dict.fromkeys(contenders, res.work), opts.repeats, _record(res), res.order)
        res.health_ms = server.health_during_job(res.work.with_steps(opts.health_steps))
        res.rss["server"] = server.peak_rss()
        res.rss["optimum"] = optimum.peak_rss() if optimum and not optimum.error else None
    finally:
        if optimum:
            optimum.close()


def short_workloads(work: Workload, steps: int) -> tuple[Workload, Workload]:
    """The CFG and unguided few-step workloads; the CFG one really guides even when --guidance <= 1."""
    short = work.with_steps(steps)
    cfg = short if short.guided else replace(short, guidance_scale=CFG_REFERENCE, negative_prompt=NEGATIVE)
    return cfg, replace(short, guidance_scale=1.0, negative_prompt="")


def run_short(raw: RawGenai, opts: Options, tmp: Path, res: Results) -> None:
    """Few-step runs, rotated: raw genai with CFG, raw at guidance 1, diffusers fp32 (own process)."""
    cfg, nocfg = short_workloads(res.work, opts.diffusers_steps)
    contenders: dict[str, Callable[[Workload], Run]] = {"raw_short": raw.run, "nocfg": raw.run}
    works = {"raw_short": cfg, "nocfg": nocfg, "diffusers": res.work.with_steps(opts.diffusers_steps)}
    peer = None
    if not opts.peers or opts.diffusers_model is None:
        res.skipped["diffusers"] = ("skipped (--quick)" if opts.quick else "skipped (--no-peers)") if not opts.peers \
            else "no diffusers folder"
    else:
        peer = PeerProcess("diffusers", opts.diffusers_model, tmp / "diffusers.log", res.settings, opts.peer_python)
        res.skipped.update({"diffusers": peer.error} if peer.error else {})
        if not peer.error:
            res.loads["diffusers"] = peer.load_seconds
            peer.run(works["diffusers"].with_steps(1))
            contenders["diffusers"] = peer.run
    try:
        interleave(contenders, works, opts.diffusers_repeats, _record(res))
        res.rss["diffusers"] = peer.peak_rss() if peer and not peer.error else None
    finally:
        if peer:
            peer.close()


def run_bench(opts: Options) -> Results:
    """The whole measurement, strictly one contender at a time."""
    from benchmarks.common import contender_settings

    res = Results(Workload(PROMPT, NEGATIVE, opts.size, opts.size, opts.steps, opts.seed, opts.guidance),
                  contender_settings(opts.server_env, opts.model))
    log(f"every contender: {res.settings.describe()}")
    with tempfile.TemporaryDirectory(prefix="sdedge-bench-") as tmp_name:
        tmp = Path(tmp_name)
        measure_floor(opts, res)
        server = start_server(opts, tmp, res)
        try:
            raw = RawGenai(opts.model, res.settings)
            res.loads["raw"] = raw.load_seconds
            run_main(raw, server, opts, tmp, res)
        finally:
            server.stop()
        run_short(raw, opts, tmp, res)  # the server and optimum have ended: room for torch
    res.rss["bench"] = vm_hwm_bytes(os.getpid())
    return res
