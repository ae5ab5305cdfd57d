"""sdedge's benchmarks: run from a source checkout, never shipped in the wheel.

    python benchmarks/run.py --quick          # smoke test on the tiny fixture
    python benchmarks/run.py                  # the full side-by-side run (docs/BENCHMARKS.md)
    python benchmarks/time_to_image.py        # issue 17's time-to-image table
    python benchmarks/physical_limit.py       # the machine's peak and the UNet step's floor
    python benchmarks/f32_memory.py MODEL     # peak RSS when OpenVINO computes in f32 (AVX2-only CPUs)
"""
