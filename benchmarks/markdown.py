"""Markdown output: tables, the machine line, measured sections between markers in docs/BENCHMARKS.md."""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from benchmarks.physical_limit import read_cpu

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
# which figures change with the CPU's instruction set (issue 17 item 7)
CPU_NOTE = ("OpenVINO computes this int8-weight model in {precision} on this CPU. Figures that need AVX-512 "
            "bf16 (or AMX): the UNet step and VAE times, every ratio to diffusers fp32, the physical peak, "
            "and peak RSS (bf16 keeps convolution weights at 2 bytes, f32 at 4). On an AVX2-only CPU OpenVINO "
            "computes in f32: steps are ~2x slower and peak RSS higher (docs/BENCHMARKS.md, f32 memory). "
            "Ratios between OpenVINO contenders (sdedge, raw genai, optimum-intel) hold on any CPU.")


def markers(section: str = "") -> tuple[str, str]:
    """The comment lines around a measured section of the markdown file (--section names one)."""
    return (BEGIN, END) if not section else (f"<!-- bench:{section}:begin -->", f"<!-- bench:{section}:end -->")


def render_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A markdown table (readable as plain text too)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def machine() -> str:
    """CPU model and the flags that matter, cores, memory, runtime versions."""
    cpu = read_cpu()
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    kib = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    versions = [f"{m} {getattr(__import__(m), '__version__', '?')}" for m in ("openvino", "openvino_genai")]
    return (f"{cpu.name or platform.processor()}, {len(os.sched_getaffinity(0))} cores (nproc), "
            f"flags {cpu.flag_line()}; {kib / 1024**2:.1f} GiB RAM; Python {platform.python_version()}, "
            f"{', '.join(versions)}")


def section(body: Sequence[str], command: str, section_name: str = "") -> str:
    """A measured section: markers, date and machine, the command, then the body's lines."""
    begin, end = markers(section_name)
    return "\n".join([begin, f"Measured {datetime.date.today().isoformat()} on: {machine()}", "",
                      f"Command: `{command}`", "", *body, end])


def write_markdown(path: Path, text: str, section_name: str = "") -> None:
    """Replace one measured section between its markers (or append it), keeping the hand-written rest."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    begin, end = markers(section_name)
    if begin in old and end in old:
        text = old[: old.index(begin)] + text + old[old.index(end) + len(end):]
    else:
        text = old.rstrip("\n") + "\n\n" + text + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
