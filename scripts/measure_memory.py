"""Peak memory of the pipelines, shared weights vs separate, each case in a fresh process.

    python scripts/measure_memory.py ~/.cache/sdedge/sd15-random-int8-ov [--size 512]

Cases: text-to-image alone; the three pipelines derived from one InpaintingPipeline (what sdedge
runs), each used once; the three built separately from the folder, each used once.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

CASES = ("text2image-only", "shared-three", "separate-three")


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_case(case: str, model: str, size: int) -> dict[str, Any]:
    """Build the pipelines of one case and generate once with each (1 step, no CFG)."""
    import numpy as np
    import openvino as ov
    import openvino_genai as g

    image = ov.Tensor(np.full((1, size, size, 3), 128, np.uint8))
    mask = ov.Tensor(np.full((1, size, size, 3), 255, np.uint8))
    common: dict[str, Any] = {"num_inference_steps": 2, "guidance_scale": 1.0}
    if case == "text2image-only":
        t2i = g.Text2ImagePipeline(model, "CPU")
        t2i.generate("a hill", width=size, height=size, **common)
        return {"case": case, "peak_rss_mb": peak_rss_mb()}
    if case == "shared-three":
        inp = g.InpaintingPipeline(model, "CPU")
        t2i, i2i = g.Text2ImagePipeline(inp), g.Image2ImagePipeline(inp)
    else:
        t2i, i2i, inp = (g.Text2ImagePipeline(model, "CPU"), g.Image2ImagePipeline(model, "CPU"),
                         g.InpaintingPipeline(model, "CPU"))
    t2i.generate("a hill", width=size, height=size, **common)
    i2i.generate("a hill", image, strength=1.0, **common)
    inp.generate("a hill", image, mask, **common)
    return {"case": case, "peak_rss_mb": peak_rss_mb()}


def main() -> int:
    """Run each case in its own process and print a table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--case", choices=CASES)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.model, args.size)))
        return 0
    rows = []
    for case in CASES:
        out = subprocess.run([sys.executable, __file__, args.model, "--size", str(args.size), "--case", case],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["peak_rss_mb"]
    print(f"| case ({args.size}x{args.size}) | peak RSS | vs text-to-image alone |\n| --- | --- | --- |")
    for row in rows:
        print(f"| {row['case']} | {row['peak_rss_mb'] / 1024:.2f} GB | {row['peak_rss_mb'] / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
