"""`sdedge bench --quick` runs on the tiny fixture and prints its table (a smoke test, no speeds asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdedge import bench

ROWS = (
    "raw genai generate",
    "sdedge POST /image",
    "sdedge job (/generate/text2img)",
    "optimum (OVStableDiffusionPipeline, same IR)",
    "diffusers (PyTorch fp32, extrapolated)",
    "text encoder",
    "UNet per step",
    "UNet per step, guidance 1 (no CFG)",
    "VAE decode",
    "image encode + save",
    "in-server overhead",
    "HTTP + client overhead",
    "UNet FLOPs per step",
    "matmul peak (default precision)",
    "UNet step floor",
    "cold start to ready (empty cache)",
    "warm start to ready (cached)",
    "first /image after ready (1 step)",
    "time to first preview",
    "server peak RSS",
    "/health latency p50",
    "/health latency p99",
)
GOALS = ("sdedge / raw genai", "sdedge / optimum-intel", "sdedge / diffusers fp32", "UNet step / FLOP floor",
         "warm start / cold start", "/health p99 (ms)", "server peak RSS (GB, 10^9 bytes)")


@pytest.mark.slow
def test_quick_bench_prints_its_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_md = tmp_path / "BENCH.md"
    assert bench.main(["--quick", "--write", str(out_md)]) == 0
    printed = capsys.readouterr().out
    names = {line.split("|")[1].strip() for line in printed.splitlines() if line.startswith("| ")}
    assert set(ROWS) <= names, set(ROWS) - names
    assert set(GOALS) <= names, set(GOALS) - names
    # the contenders produced real numbers, not "n/a"
    for row in ("raw genai generate", "sdedge POST /image", "sdedge job (/generate/text2img)", "UNet per step"):
        value = next(line.split("|")[2].strip() for line in printed.splitlines() if line.startswith(f"| {row} |"))
        assert value.endswith((" s", " ms")) and float(value.split()[0]) > 0, (row, value)
    text = out_md.read_text()
    assert bench.BEGIN in text and bench.END in text and "python scripts/bench.py --quick" in text


def test_write_keeps_hand_written_text(tmp_path: Path) -> None:
    path = tmp_path / "B.md"
    path.write_text(f"# Title\n\nintro\n\n{bench.BEGIN}\nold\n{bench.END}\n\n## Notes\nkept\n")
    bench.write_markdown(path, f"{bench.BEGIN}\nnew\n{bench.END}")
    text = path.read_text()
    assert "new" in text and "old" not in text and "intro" in text and "kept" in text


def test_percentile_and_median() -> None:
    from sdedge.bench_peers import median, percentile

    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0 and percentile([], 99) is None
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([]) is None


def test_named_sections_are_appended_then_replaced(tmp_path: Path) -> None:
    path = tmp_path / "B.md"
    begin, end = bench.markers("fast-decoder")
    bench.write_markdown(path, f"{begin}\nfirst\n{end}", "fast-decoder")
    bench.write_markdown(path, f"{begin}\nsecond\n{end}", "fast-decoder")
    text = path.read_text()
    assert text.startswith("# Benchmarks") and text.count(begin) == 1 and "second" in text and "first" not in text
