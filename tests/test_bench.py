"""benchmarks/ (outside the wheel): the quick smoke run on the tiny fixture, and the pieces it is built from."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import markdown, report, run, suite  # noqa: E402
from benchmarks.common import TINY_MODEL, Run, Workload, contender_settings, median, percentile  # noqa: E402
from benchmarks.physical_limit import CPU, table_per_cycle  # noqa: E402

ROWS = (
    "contender settings",
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
    "best OpenVINO matmul",
    "UNet step floor (physical limit)",
    "cold start to ready (empty cache)",
    "warm start to ready (cached)",
    "first /image after ready (1 step)",
    "time to first preview",
    "server peak RSS",
    "/health latency p50",
    "/health latency p99",
    "round order",
)
GOALS = ("sdedge / raw genai", "sdedge / optimum-intel", "sdedge / diffusers fp32", "UNet step / best matmul floor",
         "warm start / cold start", "/health p99 (ms)", "server peak RSS (GB, 10^9 bytes)")


def cells(printed: str) -> dict[str, list[str]]:
    """Table rows of the printed output by their first cell."""
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in printed.splitlines() if line.startswith("| ")}


@pytest.mark.slow
def test_quick_bench_is_an_honest_smoke_test(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_md = tmp_path / "BENCH.md"
    assert run.main(["--quick", "--write", str(out_md)]) == 0
    printed = capsys.readouterr().out
    rows = cells(printed)
    assert set(ROWS) <= set(rows), set(ROWS) - set(rows)
    assert set(GOALS) <= set(rows), set(GOALS) - set(rows)
    assert "Smoke test of the tiny fixture model" in printed
    for goal in GOALS:  # no verdict against goals that only apply to the full model
        assert rows[goal][-1] == report.SMOKE, (goal, rows[goal])
    for row in ("raw genai generate", "sdedge POST /image", "sdedge job (/generate/text2img)", "UNet per step"):
        value = rows[row][0]
        assert value.endswith((" s", " ms")) and float(value.split()[0]) > 0, (row, value)
    assert "UNet per call:" in rows["sdedge POST /image"][1]
    orders = rows["round order"][1].split("; ")
    assert len(orders) == 3 and len(set(orders)) == 3  # rotated: every round starts with another contender
    text = out_md.read_text()
    assert markdown.BEGIN in text and markdown.END in text and "python benchmarks/run.py --quick" in text


def test_rotation_puts_every_contender_first_once_per_cycle() -> None:
    names = ["raw", "image", "job", "optimum"]
    firsts = [suite.rotated(names, r)[0] for r in range(4)]
    assert sorted(firsts) == sorted(names)
    assert all(sorted(suite.rotated(names, r)) == sorted(names) for r in range(7))


def test_guidance_1_row_compares_with_a_guided_run() -> None:
    work = Workload("p", "n", 64, 64, 4, 1, 1.0)
    cfg, nocfg = suite.short_workloads(work, 2)
    assert cfg.guided and cfg.guidance_scale == suite.CFG_REFERENCE and cfg.steps == 2
    assert not nocfg.guided and nocfg.steps == 2
    guided_cfg, _ = suite.short_workloads(Workload("p", "n", 64, 64, 4, 1, 5.0), 2)
    assert guided_cfg.guidance_scale == 5.0


def test_one_step_runs_extrapolate_from_the_unet_call_time() -> None:
    # one step: there is no gap between step callbacks, but the UNet call itself is timed
    runs = [Run(3.0, {"unet_mean_ms": 1000.0, "unet_calls": 1.0}), Run(3.2, {"unet_mean_ms": 1100.0, "unet_calls": 1.0})]
    total, per_call = report.extrapolate(runs, 20)
    assert per_call == pytest.approx(1.05) and total == pytest.approx(3.1 + 19 * 1.05)


def test_server_settings_reach_every_contender() -> None:
    settings = contender_settings({"FAST_DECODER": "true", "OV_NUM_THREADS": "1", "WARMUP": "true"}, TINY_MODEL)
    assert settings.decoder == "tiny"  # the fixture has vae_decoder_tiny/
    assert settings.ov_properties["INFERENCE_NUM_THREADS"] == 1 and "CACHE_DIR" not in settings.ov_properties
    assert settings.server_only == ("WARMUP",)
    assert contender_settings({}, TINY_MODEL).decoder == "full"


def test_peak_per_cycle_follows_the_instruction_set() -> None:
    def cpu(vendor: str, family: int, *flags: str) -> CPU:
        return CPU("x", vendor, family, {"avx2", "fma", *flags}, 2, 3.0)

    avx2, _ = table_per_cycle(cpu("GenuineIntel", 6))
    assert avx2["f32"] == 32 and "bf16" not in avx2  # OpenVINO computes in f32 there
    zen4, _ = table_per_cycle(cpu("AuthenticAMD", 0x19, "avx512f", "avx512_bf16", "avx512_vnni"))
    zen5, _ = table_per_cycle(cpu("AuthenticAMD", 0x1A, "avx512f", "avx512_bf16", "avx512_vnni"))
    assert (zen4["f32"], zen4["bf16"], zen4["int8"]) == (32, 64, 128)
    assert (zen5["f32"], zen5["bf16"], zen5["int8"]) == (64, 128, 256)
    amx, _ = table_per_cycle(cpu("GenuineIntel", 6, "avx512f", "avx512_bf16", "amx_bf16", "amx_int8"))
    assert amx["bf16"] == 1024 and amx["int8"] == 2048


def test_sdedge_bench_outside_a_checkout_says_where_to_run_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from sdedge.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--quick"]) == 2
    assert "python benchmarks/run.py --quick" in capsys.readouterr().err


def test_sdedge_bench_in_a_checkout_runs_the_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from sdedge.cli import main

    calls: list[list[str]] = []
    monkeypatch.chdir(ROOT / "docs")  # found from a sub-folder too
    monkeypatch.setattr(subprocess, "call", lambda argv: calls.append(argv) or 0)
    assert main(["bench", "--quick"]) == 0
    assert calls and calls[0][1] == str(ROOT / "benchmarks" / "run.py") and calls[0][2:] == ["--quick"]


def test_write_keeps_hand_written_text(tmp_path: Path) -> None:
    path = tmp_path / "B.md"
    path.write_text(f"# Title\n\nintro\n\n{markdown.BEGIN}\nold\n{markdown.END}\n\n## Notes\nkept\n")
    markdown.write_markdown(path, f"{markdown.BEGIN}\nnew\n{markdown.END}")
    text = path.read_text()
    assert "new" in text and "old" not in text and "intro" in text and "kept" in text


def test_percentile_and_median() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0 and percentile([], 99) is None
    assert median([3.0, 1.0, 2.0]) == 2.0 and median([]) is None


def test_named_sections_are_appended_then_replaced(tmp_path: Path) -> None:
    path = tmp_path / "B.md"
    begin, end = markdown.markers("fast-decoder")
    markdown.write_markdown(path, f"{begin}\nfirst\n{end}", "fast-decoder")
    markdown.write_markdown(path, f"{begin}\nsecond\n{end}", "fast-decoder")
    text = path.read_text()
    assert text.startswith("# Benchmarks") and text.count(begin) == 1 and "second" in text and "first" not in text
