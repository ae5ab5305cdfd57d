#!/usr/bin/env python
"""Remote engine benchmark: a job run directly on server 2 against the same job sent to server 1 for its
remote model (an A1111 remote pointing at server 2), side by side in alternating rounds.

    python benchmarks/remote.py [--rounds 5]

Both are `sdedge serve` processes on the tiny fixture model (tests/serverproc.py); the difference of the
medians is what the remote path costs: server 1's queue and claim, the A1111 call, progress polling, and
decoding and storing the images again on server 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from serverproc import ServerProcess  # noqa: E402

CASES = {"64x64, 3 steps": {"width": 64, "height": 64, "steps": 3},
         "256x256, 10 steps": {"width": 256, "height": 256, "steps": 10}}


def timed_job(server: ServerProcess, body: dict[str, Any]) -> float:
    """Seconds from submission to a succeeded job, polled every 20 ms."""
    started = time.perf_counter()
    status, job = server.request("POST", "/generate/text2img", body)
    assert status == 202, job
    while (job := server.request("GET", f"/jobs/{job['id']}")[1])["status"] not in ("succeeded", "failed", "canceled"):
        time.sleep(0.02)
    assert job["status"] == "succeeded", job["error"]
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="sdedge-remote-bench-"))
    (base / "two").mkdir()
    (base / "one").mkdir()
    two = ServerProcess(base / "two", OPENVINO_DEVICE="CPU", LOG_LEVEL="WARNING").start()
    engines = [{"id": "two", "kind": "a1111", "url": two.base}]
    one = ServerProcess(base / "one", OPENVINO_DEVICE="CPU", LOG_LEVEL="WARNING", WORKER_POLL_SECONDS="0.2",
                        REMOTE_ENGINES=json.dumps(engines)).start()
    try:
        two.wait_ready()
        one.wait_ready()
        print("| case | direct on server 2 (median s) | via server 1's remote model (median s) | overhead |")
        print("| --- | --- | --- | --- |")
        for name, case in CASES.items():
            direct, remote = [], []
            timed_job(two, {"prompt": "warm-up", **case})
            for index in range(args.rounds):  # alternate, so load changes hit both alike
                body = {"prompt": f"round {index}", "seed": index, **case}
                pair = [(two, body, direct), (one, {**body, "model": "two"}, remote)]
                for server, sent, into in (pair if index % 2 == 0 else pair[::-1]):
                    into.append(timed_job(server, sent))
            d, r = statistics.median(direct), statistics.median(remote)
            print(f"| {name} | {d:.2f} | {r:.2f} | +{(r - d) * 1000:.0f} ms ({r / d:.2f}x) |")
    finally:
        one.stop()
        two.stop()


if __name__ == "__main__":
    main()
