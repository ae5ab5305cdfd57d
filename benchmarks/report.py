"""From the main run's measurements to the rows of its table and goal table."""

from __future__ import annotations

import os
from functools import partial

from benchmarks.common import Run, median, percentile, ratio
from benchmarks.suite import CFG_REFERENCE, Results

ANALYTIC_GFLOP_512 = 803.0  # UNet FLOPs per sample at 512x512 (anchors.md); CFG doubles it per step
SMOKE = "not judged (smoke test: the goals are for the full SD 1.5 model)"


def med(runs: list[Run], key: str | None = None) -> float | None:
    """Median wall seconds, or of one stage."""
    return median([r.seconds if key is None else r.stages[key] for r in runs if key is None or key in r.stages])


def fmt(value: float | None, unit: str, scale: float = 1.0, digits: int = 2) -> str:
    """A number with its unit, or n/a."""
    return "n/a" if value is None else f"{value * scale:.{digits}f} {unit}".strip()


def spread(values: list[float]) -> str:
    """min, median, max."""
    return f"min {min(values):.1f}, median {median(values):.1f}, max {max(values):.1f}" if values else "n/a"


def x(a: float | None, b: float | None) -> str:
    """a / b to three digits."""
    return fmt(ratio(a, b), "", digits=3)


def unet_per_call(runs: list[Run]) -> float | None:
    """Median over runs of the mean UNet call (genai's and the peers' own per-call time; the server's unet_ms)."""
    return median([r.stages.get("unet_mean_ms", r.stages.get("unet_ms", 0.0)) for r in runs
                   if r.stages.get("unet_mean_ms", r.stages.get("unet_ms"))])


def extrapolate(runs: list[Run], steps: int) -> tuple[float | None, float | None]:
    """(seconds extrapolated to `steps`, seconds per UNet call) from few-step runs: total + (steps - n) * call."""
    total, call, count = med(runs), unet_per_call(runs), med(runs, "unet_calls")
    if total is None or call is None or count is None:
        return None, None
    return total + (steps - count) * call / 1000, call / 1000


def derived(res: Results) -> dict[str, float | None]:
    """The figures the goals and the table are built from."""
    raw, image, job = med(res.raw), med(res.image), med(res.job)
    sdedge = max(v for v in (image, job) if v is not None) if image or job else None
    diffusers_total, _ = extrapolate(res.diffusers, res.work.steps)
    raw_short_total, _ = extrapolate(res.raw_short, res.work.steps)
    peak = res.peak.flops(res.peak.openvino_precision) if res.peak else None
    best = res.peak.matmul.get(res.peak.openvino_precision, (None, ""))[0] if res.peak else None
    overheads = [r.stages["total_ms"] - r.stages.get("generate_ms", 0) - r.stages.get("save_ms", 0)
                 for r in res.image if "total_ms" in r.stages]
    return {
        "raw": raw, "image": image, "job": job, "optimum": med(res.optimum), "diffusers": diffusers_total,
        "unet_ms": med(res.raw, "unet_step_ms"), "peak": peak, "best_matmul": best,
        "floor_ms": 1000 * res.flops_per_step / peak if peak else None,
        "practical_floor_ms": 1000 * res.flops_per_step / best if best else None,
        "in_server_ms": median(overheads),
        "http_ms": median([1000 * r.seconds - r.stages["total_ms"] for r in res.image if "total_ms" in r.stages]),
        "first_preview_ms": med(res.job, "first_preview_ms"),
        "health_p50": percentile(res.health_ms, 50), "health_p99": percentile(res.health_ms, 99),
        "rss": float(server_rss) if (server_rss := res.rss.get("server")) else None,
        "sdedge": sdedge,
        # diffusers ran after the rounds: compare it with raw genai runs alternated with it, then scale
        "sdedge_vs_diffusers": ratio(ratio(sdedge, raw), ratio(diffusers_total, raw_short_total)),
        "raw_short_total": raw_short_total,
    }


s_ = partial(fmt, unit="s")
ms_ = partial(fmt, unit="ms", digits=0)


def paired(runs: list[Run], other: list[Run]) -> str:
    """Per-round wall ratios against the other contender's run of the same round."""
    return f" (per round: {', '.join(f'{a.seconds / b.seconds:.3f}' for a, b in zip(runs, other))})" if other else ""


def unet_ratio(runs: list[Run], other: list[Run]) -> str:
    """'; UNet per call: 0.998' — the same comparison without anything around the UNet."""
    return f"; UNet per call: {x(unet_per_call(runs), unet_per_call(other))}"


def table_rows(res: Results) -> list[tuple[str, str, str]]:
    """(row, value, detail) for every figure; the row names are stable (tests check them)."""
    d, w, gib = derived(res), res.work, 1024.0**3
    d_total, d_call = extrapolate(res.diffusers, w.steps)
    nocfg, cfg = med(res.nocfg, "unet_step_ms"), med(res.raw_short, "unet_step_ms")
    cfg_guidance = w.guidance_scale if w.guided else CFG_REFERENCE
    p = res.peak

    def peer(name: str, value: float | None, note: str, detail: str = "") -> tuple[str, str, str]:
        if name in res.skipped:
            return f"{name} ({note})", res.skipped[name], ""
        return f"{name} ({note})", s_(value), f"sdedge /image / this = {x(d['image'], value)}{detail}"

    first: list[float | None] = [*res.first_image] or [None, None]
    optimum_rss = float(res.rss.get("optimum") or 0) or None
    diffusers_rss = float(res.rss.get("diffusers") or 0) or None
    overhead = None if d["image"] is None or d["raw"] is None else d["image"] - d["raw"]
    batch = 2 if w.guided else 1
    precision = p.openvino_precision if p else "?"
    matmuls = ", ".join(f"{k} {v[0] / 1e9:.0f} ({v[1]})" for k, v in sorted(p.matmul.items())) if p else "n/a"
    return [
        ("contender settings", res.settings.decoder + " decoder", res.settings.describe()),
        ("raw genai generate", s_(d["raw"]), f"{w.width}x{w.height}, {w.steps} steps, CFG {w.guidance_scale}"),
        ("sdedge POST /image", s_(d["image"]),
         f"/ raw = {x(d['image'], d['raw'])}{paired(res.image, res.raw)}{unet_ratio(res.image, res.raw)}"),
        ("sdedge job (/generate/text2img)", s_(d["job"]),
         f"/ raw = {x(d['job'], d['raw'])}{paired(res.job, res.raw)}{unet_ratio(res.job, res.raw)}"),
        peer("optimum", d["optimum"], "OVStableDiffusionPipeline, same IR",
             paired(res.image, res.optimum) + unet_ratio(res.image, res.optimum)),
        peer("diffusers", d_total, "PyTorch fp32, extrapolated",
             f"; {s_(d_call)} per UNet call over {fmt(med(res.diffusers, 'unet_calls'), '', digits=0)} steps; raw "
             f"genai alternated with it: {s_(d['raw_short_total'])} extrapolated; load-normalized sdedge / this = "
             f"{fmt(d['sdedge_vs_diffusers'], '', digits=3)}"),
        ("text encoder", ms_(med(res.raw, "text_encoder_ms")), "genai metrics, raw run"),
        ("UNet per step", ms_(d["unet_ms"]),
         f"median UNet call; {fmt(med(res.raw, 'unet_calls'), '', digits=0)} calls per image"),
        ("UNet per step, guidance 1 (no CFG)", ms_(nocfg),
         f"/ CFG step at guidance {cfg_guidance} in alternated runs ({ms_(cfg)}) = {x(nocfg, cfg)}"),
        ("VAE decode", ms_(med(res.raw, "vae_decoder_ms")),
         f"{res.settings.decoder} decoder; full VAE: {res.vae_flops / 1e9:.1f} GFLOP, floor "
         f"{fmt(ratio(res.vae_flops, d['peak']), 'ms', 1000, 0)}"),
        ("image encode + save", ms_(med(res.image, "save_ms")), "PNG with infotext, on the worker thread"),
        ("in-server overhead", ms_(d["in_server_ms"]), "/image total - genai generate - save: queue, callbacks, DB"),
        ("HTTP + client overhead", ms_(d["http_ms"]), "/image wall - server total"),
        ("sdedge overhead vs raw", s_(overhead), "median /image - median raw"),
        ("UNet FLOPs per step", fmt(res.flops_per_step, "GFLOP", 1e-9, 1),
         f"counted on the IR, batch {batch}; analytic at 512: {batch * ANALYTIC_GFLOP_512:.0f}"),
        (f"physical peak ({precision})", fmt(d["peak"], "GFLOP/s", 1e-9, 0), p.derivation() if p else ""),
        ("best OpenVINO matmul", fmt(d["best_matmul"], "GFLOP/s", 1e-9, 0), f"G/s by precision: {matmuls}"),
        ("UNet step floor (physical limit)", ms_(d["floor_ms"]),
         f"FLOPs / physical peak; the step runs at {fmt(ratio(d['floor_ms'], d['unet_ms']), '', 100, 0)}% of it; "
         f"at the best matmul: {ms_(d['practical_floor_ms'])}"),
        ("cold start to ready (empty cache)", fmt(res.cold_s, "s", digits=1), "process start -> /health/ready 200"),
        ("warm start to ready (cached)", fmt(res.warm_s, "s", digits=1), f"/ cold = {x(res.warm_s, res.cold_s)}"),
        ("first /image after ready (1 step)", s_(first[0]), f"the next 1-step /image: {s_(first[1])}"),
        ("time to first preview", fmt(d["first_preview_ms"], "s", 1e-3), "job submit -> preview_url seen"),
        ("server peak RSS", fmt(d["rss"], "GiB", 1 / gib),
         f"VmHWM; optimum's: {fmt(optimum_rss, 'GiB', 1 / gib)}, diffusers': {fmt(diffusers_rss, 'GiB', 1 / gib)}"),
        ("/health latency p50", fmt(d["health_p50"], "ms", digits=1), f"{len(res.health_ms)} polls during a job"),
        ("/health latency p99", fmt(d["health_p99"], "ms", digits=1), ""),
        ("round order", "rotated", "; ".join(",".join(names) for names in res.order)),
        ("load average", spread(res.load_average), f"1-minute, after each run, {os.cpu_count()} CPUs, shared"),
    ]


def goal_rows(res: Results, quick: bool = False) -> list[tuple[str, str, str, str]]:
    """(goal, target, measured, verdict) for issue 7's goals; a smoke test judges none of them."""
    d = derived(res)
    checks = [
        ("sdedge / raw genai", "<= 1.02", ratio(d["sdedge"], d["raw"]), 1.02),
        ("sdedge / optimum-intel", "<= 1.00", ratio(d["sdedge"], d["optimum"]), 1.00),
        ("sdedge / diffusers fp32", "<= 0.5", d["sdedge_vs_diffusers"], 0.5),
        ("UNet step / best matmul floor", "<= 1.10", ratio(d["unet_ms"], d["practical_floor_ms"]), 1.10),
        ("warm start / cold start", "<= 0.33", ratio(res.warm_s, res.cold_s), 1 / 3),
        ("/health p99 (ms)", "< 50", d["health_p99"], 50.0),
        ("server peak RSS (GB, 10^9 bytes)", "<= 6", d["rss"] / 1e9 if d["rss"] else None, 6.0),
    ]
    verdict = {None: "n/a", True: "met", False: "missed"}
    return [(name, target, fmt(value, "", digits=3),
             SMOKE if quick else verdict[None if value is None else value <= limit])
            for name, target, value, limit in checks]
