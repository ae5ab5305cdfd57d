"""Two generations at once vs one after another on the CPU (why sdedge runs one worker per device).

    python scripts/measure_concurrency.py MODEL [SIZE] [STEPS]      # defaults: 256, 2
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from typing import Any


def main() -> int:
    """Print the pair's wall time both ways, medians of 3 interleaved rounds."""
    import openvino_genai as g

    from sdedge.rng import genai_generator

    model = sys.argv[1]
    size, steps = (int(sys.argv[2]) if len(sys.argv) > 2 else 256), (int(sys.argv[3]) if len(sys.argv) > 3 else 2)
    pipes = [g.Text2ImagePipeline(model, "CPU") for _ in range(2)]

    def run(pipe: Any, seed: int) -> None:
        pipe.generate("a hill", width=size, height=size, num_inference_steps=steps, guidance_scale=1.0,
                      generator=genai_generator(seed))

    for pipe in pipes:
        run(pipe, 0)  # first inference set-up out of the way
    sequential, parallel = [], []
    for _ in range(3):
        started = time.perf_counter()
        for seed, pipe in enumerate(pipes):
            run(pipe, seed)
        sequential.append(time.perf_counter() - started)
        threads = [threading.Thread(target=run, args=(pipe, seed)) for seed, pipe in enumerate(pipes)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        parallel.append(time.perf_counter() - started)
    seq, par = statistics.median(sequential), statistics.median(parallel)
    print(f"two jobs {size}x{size}, {steps} steps: one after another {seq:.1f} s, at once {par:.1f} s "
          f"(each job's latency x{2 * par / seq:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
