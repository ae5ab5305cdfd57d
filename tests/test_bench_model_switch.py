"""benchmarks/model_switch.py: its report from recorded figures (the measuring itself is the benchmark's run)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import model_switch  # noqa: E402

MB = 1024 * 1024


def _loads(models: str, seconds: float) -> list[dict[str, object]]:
    return [{"model": m, "load_s": seconds, "switch": i > 0} for i, m in enumerate(models)]


def test_the_report_sets_peaks_and_switches_side_by_side() -> None:
    base = {"baseline_rss": 70 * MB, "rss_after_unload_all": 80 * MB, "freed_per_unload": [50 * MB, 52 * MB]}
    results = {
        "one": {**base, "peak_rss": 200 * MB, "loads": _loads("a", 1.0)},
        "once": {**base, "peak_rss": 240 * MB, "loads": _loads("ab", 1.0)},
        "roundtrips": {**base, "peak_rss": 252 * MB, "loads": _loads("abab", 2.0)},
        "warm-a": {**base, "peak_rss": 200 * MB, "loads": [{"model": "a", "load_s": 9.0, "switch": False}]
                   + [{"model": "a", "load_s": 1.0, "switch": False}] * 3},
        "warm-b": {**base, "peak_rss": 220 * MB, "loads": [{"model": "b", "load_s": 4.0, "switch": False}] * 3},
    }
    args = argparse.Namespace(a="x/tiny-a", b="y/tiny-b", size=64, steps=1, roundtrips=2)
    table = model_switch._report(results, args)
    assert "| 252 MB = 1.050x one switch (goal ≤ 1.10x) |" in table
    assert "2.000 s / 1.000 s = 2.00x" in table  # switch into A vs its warm load (the compiling first one left out)
    assert "2.000 s / 4.000 s = 0.50x" in table
    assert "| 51 MB |" in table
