#!/usr/bin/env python
"""The machine's real peak and the UNet step's physical limit, with the derivation spelled out.

    python benchmarks/physical_limit.py [--model DIR] [--size 512] [--guidance 7.5]

peak = cores x clock x FLOP per cycle per core, for the instruction set OpenVINO computes the model
with (read from the compiled model: `INFERENCE_PRECISION_HINT` and the kernels in its exec graph).
FLOP per cycle comes from /proc/cpuinfo's flags and the core's vector units; when a C compiler is
present, `isa_probe.c` measures it (and the clock) on every core at once instead. OpenVINO MatMuls of
several shapes at f32, bf16 and int8 cross-check it: none may beat the peak. The floor of one UNet
call is its FLOPs (counted on the IR) over the peak.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.common import TINY_MODEL, log

FLAGS_OF_INTEREST = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
                     "amx_bf16", "amx_int8", "amx_tile")
# precision -> (probe kernel, what one instruction does), FLOP (or int8 op) per cycle comes from the probe
KERNELS = {"f32": "fma512", "f32-avx2": "fma256", "bf16": "bf16", "int8": "vnni512"}
MATMUL_SHAPES = ((4096, 2048, 2048), (4096, 320, 1280), (1024, 640, 2560))  # square; UNet FF at 64² and 32²


@dataclass
class CPU:
    """What /proc/cpuinfo says."""

    name: str
    vendor: str
    family: int
    flags: set[str]
    cores: int
    nominal_ghz: float

    def flag_line(self) -> str:
        """The flags that decide the precision, present ones only."""
        return " ".join(f for f in FLAGS_OF_INTEREST if f in self.flags) or "none of interest"


@dataclass
class Peak:
    """Peak per precision, with how each figure was obtained."""

    cpu: CPU
    clock_ghz: float
    clock_source: str
    per_cycle: dict[str, float]  # FLOP (int8: ops) per cycle per core
    per_cycle_source: str
    openvino_precision: str  # what OpenVINO computes this model in: f32, bf16
    kernels: list[str] = field(default_factory=list)  # exec-graph kernels of a weight-compressed probe
    matmul: dict[str, tuple[float, str]] = field(default_factory=dict)  # precision -> best FLOP/s, shape

    def flops(self, precision: str) -> float | None:
        """Peak FLOP/s of all cores at one precision."""
        per = self.per_cycle.get(precision)
        return None if per is None else self.cpu.cores * self.clock_ghz * 1e9 * per

    def derivation(self, precision: str | None = None) -> str:
        """'2 cores x 4.11 GHz (measured) x 128 FLOP/cycle (bf16, ...) = 1052 GFLOP/s'."""
        p = precision or self.openvino_precision
        per, peak = self.per_cycle.get(p), self.flops(p)
        if per is None or peak is None:
            return f"no {p} peak"
        return (f"{self.cpu.cores} cores x {self.clock_ghz:.2f} GHz ({self.clock_source}) x {per:.0f} "
                f"{'int8 op' if p == 'int8' else 'FLOP'}/cycle ({p}, {self.per_cycle_source}) = {peak / 1e9:.0f} G/s")


def read_cpu() -> CPU:
    """CPU model, vendor, family, flags, usable cores and nominal clock from /proc/cpuinfo."""
    import os

    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""

    def first(key: str) -> str:
        found = re.search(rf"^{key}\s*:\s*(.*)$", text, re.M)
        return found.group(1).strip() if found else ""

    mhz = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)]
    max_freq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    ghz = int(max_freq.read_text()) / 1e6 if max_freq.exists() else (max(mhz) / 1000 if mhz else 0.0)
    return CPU(first("model name"), first("vendor_id"), int(first("cpu family") or 0), set(first("flags").split()),
               len(os.sched_getaffinity(0)), ghz)


def table_per_cycle(cpu: CPU) -> tuple[dict[str, float], str]:
    """FLOP per cycle per core from the flags and the vector units a core of this family has."""
    f = cpu.flags
    amd = cpu.vendor == "AuthenticAMD"
    # AVX-512: two 512-bit FMA units (Xeon Gold/Platinum, Zen 5 desktop/server) or one (Zen 4 splits
    # 512-bit ops over its 256-bit units; Xeon Silver and client parts have one 512-bit FMA port)
    fma512 = 64.0 if (not amd or cpu.family >= 0x1A) else 32.0
    per: dict[str, float] = {}
    if "avx2" in f and "fma" in f:
        per["f32-avx2"] = 32.0  # two 256-bit FMA units: 8 lanes x 2 FLOP x 2
    if "avx512f" in f:
        per["f32"] = fma512
    else:
        per["f32"] = per.get("f32-avx2", 16.0)
    if "amx_bf16" in f:
        per["bf16"] = 1024.0  # one AMX TMUL: 16x32 bf16 dot products per cycle
    elif "avx512_bf16" in f:
        per["bf16"] = 2 * per["f32"]  # VDPBF16PS: two bf16 products per f32 lane
    if "amx_int8" in f:
        per["int8"] = 2048.0
    elif "avx512_vnni" in f:
        per["int8"] = 4 * per["f32"]  # VPDPBUSD: four u8*s8 products per int32 lane
    elif "avx_vnni" in f:
        per["int8"] = 4 * per.get("f32-avx2", 32.0)
    note = "two 512-bit FMA units per core assumed" if fma512 == 64 else "512-bit ops on 256-bit units"
    return per, f"from the flags ({note})"


def _probe_binary(work: Path) -> Path | None:
    """Compile isa_probe.c, or None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    out = work / "isa_probe"
    source = Path(__file__).with_name("isa_probe.c")
    done = subprocess.run([cc, "-O3", "-funroll-all-loops", "-o", str(out), str(source)], capture_output=True)
    return out if done.returncode == 0 else None


def _run_probe(binary: Path, kernel: str, iterations: int, copies: int, bursts: int) -> float:
    """The rate every core sustains at once: `copies` simultaneous processes, each its best burst; the slowest."""
    with ThreadPoolExecutor(copies) as pool:
        outs = list(pool.map(lambda _: subprocess.run([str(binary), kernel, str(iterations), str(bursts)],
                                                      capture_output=True, text=True).stdout, range(copies)))
    rates = [float(o) for o in outs if o.strip()]
    return min(rates) if len(rates) == copies else 0.0


def probe_per_cycle(cpu: CPU, quick: bool) -> tuple[float, dict[str, float]] | None:
    """(clock GHz, FLOP per cycle per core) measured on all cores at once, or None without a compiler."""
    wanted = {"f32-avx2": "avx2", "f32": "avx512f", "bf16": "avx512_bf16", "int8": "avx512_vnni"}
    with tempfile.TemporaryDirectory(prefix="sdedge-probe-") as tmp:
        binary = _probe_binary(Path(tmp))
        if binary is None:
            return None
        bursts, n = (20, 100_000) if quick else (60, 200_000)  # ~2-5 ms bursts: some run uninterrupted
        clock = _run_probe(binary, "clock", 2 * n, cpu.cores, bursts)
        rates = {p: _run_probe(binary, KERNELS[p], n, cpu.cores, bursts) for p, flag in wanted.items()
                 if flag in cpu.flags}
    if clock <= 0:
        return None
    # the instruction rates are architectural powers of two per cycle: round the measurement to one
    return clock, {p: float(2 ** round(np.log2(r / clock))) for p, r in rates.items() if r > 0}


def openvino_precision() -> tuple[str, list[str]]:
    """The precision and kernels OpenVINO's CPU plugin picks for an int8-weight Conv + MatMul (as the UNet's)."""
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)

    def compressed(shape: tuple[int, ...]) -> Any:  # NNCF's int8 weight pattern: u8, zero point, scale
        q = ops.constant(rng.integers(0, 255, shape, dtype=np.uint8))
        scale_shape = (shape[0],) + (1,) * (len(shape) - 1)
        return ops.multiply(ops.subtract(ops.convert(q, "f32"), ops.constant(np.full(scale_shape, 128, np.float32))),
                            ops.constant(np.full(scale_shape, 0.01, np.float32)))

    x = ops.parameter([1, 64, 16, 16], ov.Type.f32)
    conv = ops.convolution(x, compressed((64, 64, 3, 3)), [1, 1], [1, 1], [1, 1], [1, 1])
    flat = ops.reshape(conv, ops.constant(np.array([1, 64, 256], np.int64)), False)
    out = ops.matmul(ops.transpose(flat, ops.constant(np.array([0, 2, 1], np.int64))), compressed((64, 64)), False, True)
    compiled = ov.Core().compile_model(ov.Model([out], [x]), "CPU")
    precision = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower().replace("<type: '", "").rstrip("'>")
    precision = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(precision, precision)
    kernels = []
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer = info["layerType"].astype(str)
        if layer in ("Convolution", "FullyConnected"):
            kernels.append(f"{layer}: {info['primitiveType'].astype(str)}")
    return precision, kernels


def _fake_quantize(node: Any, low: float, high: float, levels: int) -> Any:
    import openvino.opset13 as ops

    lo, hi = ops.constant(np.array(low, np.float32)), ops.constant(np.array(high, np.float32))
    return ops.fake_quantize(node, lo, hi, lo, hi, levels)


def matmul_flops(seconds: float, m: int, k: int, n: int, precision: str | None = None) -> float:
    """FLOP/s of an (m x k) @ (k x n) OpenVINO MatMul on the CPU: median over `seconds` of calls.

    precision None: the plugin's default (bf16 where the CPU has it); "f32"/"bf16": that hint;
    "int8": FakeQuantize on both inputs, which OpenVINO runs as a u8 x i8 kernel (VNNI/AMX).
    """
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(0)
    param = ops.parameter([m, k], ov.Type.f32)
    x: Any = param
    weights: Any = ops.constant(rng.standard_normal((k, n), dtype=np.float32))
    if precision == "int8":
        x, weights = _fake_quantize(ops.relu(param), 0.0, 4.0, 256), _fake_quantize(weights, -4.0, 4.0, 255)
    model = ov.Model([ops.matmul(x, weights, False, False)], [param])
    config = {"INFERENCE_PRECISION_HINT": precision} if precision in ("f32", "bf16") else {}
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
    data = np.abs(rng.standard_normal((m, k), dtype=np.float32))
    for _ in range(3):
        request.infer([data])
    durations: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(durations) < 5:
        started = time.perf_counter()
        request.infer([data])
        durations.append(time.perf_counter() - started)
    return 2.0 * m * k * n / statistics.median(durations)


def best_matmuls(cpu: CPU, seconds: float, shapes: tuple[tuple[int, int, int], ...]) -> dict[str, tuple[float, str]]:
    """precision -> (best FLOP/s over the shapes, 'MxKxN'), for f32, bf16 (if the CPU has it) and int8."""
    precisions = ["f32", "int8"] + (["bf16"] if {"avx512_bf16", "amx_bf16"} & cpu.flags else [])
    best: dict[str, tuple[float, str]] = {}
    for precision in precisions:
        for m, k, n in shapes:
            rate = matmul_flops(seconds, m, k, n, precision)
            if rate > best.get(precision, (0.0, ""))[0]:
                best[precision] = (rate, f"{m}x{k}x{n}")
    return best


def measure_peak(quick: bool = False, matmuls: bool = True) -> Peak:
    """The whole derivation: flags, clock, FLOP per cycle, OpenVINO's precision, the matmul cross-check."""
    cpu = read_cpu()
    per, per_source = table_per_cycle(cpu)
    clock, clock_source = cpu.nominal_ghz, "nominal, /proc/cpuinfo"
    probed = probe_per_cycle(cpu, quick)
    if probed is not None:
        clock, measured = probed
        clock_source = "measured: dependent adds, all cores busy"
        if measured:
            # isa_probe.c runs AVX-512/AVX2 instructions only: on AMX the tile unit's rate stays the table's
            amx = {k for k, flag in (("bf16", "amx_bf16"), ("int8", "amx_int8")) if flag in cpu.flags}
            per.update({k: v for k, v in measured.items() if k not in amx})
            if "avx512f" not in cpu.flags and "f32-avx2" in measured:
                per["f32"] = measured["f32-avx2"]
            per_source = "measured by isa_probe.c on all cores" + (
                f"; {', '.join(sorted(amx))} from the flags (AMX TMUL, not probed)" if amx else "")
    precision, kernels = openvino_precision()
    peak = Peak(cpu, clock, clock_source, per, per_source, precision, kernels)
    if matmuls:
        shapes = ((512, 512, 512), (256, 320, 1280)) if quick else MATMUL_SHAPES
        peak.matmul = best_matmuls(cpu, 0.2 if quick else 1.5, shapes)
    return peak


def explain(peak: Peak, unet_flops: float | None = None, unet_ms: float | None = None) -> list[str]:
    """The derivation as lines of text, ending with the UNet floor when its FLOPs are known."""
    p = peak.openvino_precision
    lines = [f"CPU: {peak.cpu.name}, {peak.cpu.cores} cores, flags: {peak.cpu.flag_line()}",
             f"OpenVINO computes int8-weight models in {p} here (INFERENCE_PRECISION_HINT; kernels: "
             f"{'; '.join(sorted(set(peak.kernels))) or 'n/a'})",
             f"peak ({p}): {peak.derivation(p)}"]
    for other in sorted(set(peak.per_cycle) - {p}):
        lines.append(f"  other precisions: {peak.derivation(other)}")
    for precision, (rate, shape) in sorted(peak.matmul.items()):
        top = peak.flops(precision)
        share = f" = {rate / top:.0%} of the {precision} peak" if top else ""
        lines.append(f"  OpenVINO MatMul {precision}: best {rate / 1e9:.0f} G/s ({shape}){share}")
    top = peak.flops(p)
    if unet_flops and top:
        floor_ms = 1000 * unet_flops / top
        lines.append(f"UNet call: {unet_flops / 1e9:.1f} GFLOP / {top / 1e9:.0f} GFLOP/s = floor {floor_ms:.0f} ms")
        if unet_ms:
            lines.append(f"  measured {unet_ms:.0f} ms: the step runs at {floor_ms / unet_ms:.0%} of the physical limit")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the derivation (and the UNet floor for a model folder)."""
    from benchmarks.flops import ir_flops

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help=f"OpenVINO model folder (e.g. {TINY_MODEL})")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--quick", action="store_true", help="short probes")
    args = parser.parse_args(argv)
    log("measuring the peak")
    peak = measure_peak(args.quick)
    flops = None
    if args.model:
        flops = ir_flops(args.model / "unet" / "openvino_model.xml", args.size, args.size, 2 if args.guidance > 1 else 1)
    print("\n".join(explain(peak, flops)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
