#!/usr/bin/env python
"""Fleet benchmark: the PostgreSQL claim and the shared file path, side by side in one run.

    python benchmarks/fleet.py [--jobs 400] [--repeats 20] [--write docs/FLEET.md]

1. Claims: jobs/s for 1, 2 and 4 processes claiming (and finishing) from one queue, no generation:
   the cost of `FOR UPDATE SKIP LOCKED` plus the fenced finish, and whether it scales.
2. End to end: jobs/s of 1 and 2 `sdedge serve` nodes on the tiny model (64x64, 1 step): a 2-core
   machine has no spare cores, so this shows the overhead of a second node more than a speed-up.
3. Files: writing and reading a 512x512 PNG through the database (the fleet's shared files) against the
   local folder, and the database growth per image.

Starts its own PostgreSQL (tests/pgserver.py) and servers (tests/serverproc.py).
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from pgserver import PostgresServer  # noqa: E402
from serverproc import ServerProcess  # noqa: E402
from sdedge.file_store import FileStore  # noqa: E402
from sdedge.job_store import JobStatus, JobStore  # noqa: E402
from sdedge.shared_files import SharedFiles  # noqa: E402


def _drain(url: str, name: str, ready: "multiprocessing.Queue[str]", go: Any,
           counter: "multiprocessing.Queue[int]") -> None:
    store, done = JobStore(url), 0
    ready.put(name)
    go.wait()  # every claimer connected and migrated: measure only the claims
    while (job := store.claim_next(name, node=name, lease_seconds=30)) is not None:
        store.finish(job.id, JobStatus.SUCCEEDED, result={"files": []}, attempt=job.attempts)
        done += 1
    counter.put(done)


def claims(server: PostgresServer, processes: int, jobs: int) -> float:
    """Jobs per second claimed and finished by `processes` claimers."""
    url = server.create_database(f"claims_{processes}_{int(time.time() * 1000)}")
    store = JobStore(url)
    for _ in range(jobs):
        store.add("text2img", {"prompt": "x"}, {"steps": 1})
    context = multiprocessing.get_context("spawn")
    ready: multiprocessing.Queue[str] = context.Queue()
    counter: multiprocessing.Queue[int] = context.Queue()
    go = context.Event()
    workers = [context.Process(target=_drain, args=(url, f"w{i}", ready, go, counter)) for i in range(processes)]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=120)
    started = time.perf_counter()
    go.set()
    total = sum(counter.get(timeout=600) for _ in workers)
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    assert total == jobs, (total, jobs)
    return jobs / elapsed


def end_to_end(server: PostgresServer, nodes: int, jobs: int) -> float:
    """Jobs per second of `nodes` real servers sharing one queue on the tiny model."""
    url = server.create_database(f"e2e_{nodes}_{int(time.time() * 1000)}")
    base = Path(tempfile.mkdtemp(prefix="sdedge-fleet-bench-"))
    servers = []
    for index in range(nodes):
        folder = base / f"node{index}"
        folder.mkdir()
        servers.append(ServerProcess(folder, DATABASE_URL=url, OPENVINO_DEVICE="CPU", WORKER_POLL_SECONDS="0.05",
                                     PREVIEW_EVERY_STEPS="0").start())
    try:
        for proc in servers:
            proc.wait_ready()
        started = time.perf_counter()
        ids = [servers[i % nodes].request("POST", "/generate/text2img", {"prompt": "x", "steps": 1})[1]["id"]
               for i in range(jobs)]
        for job_id in ids:
            while servers[0].request("GET", f"/jobs/{job_id}")[1]["status"] not in ("completed", "failed"):
                time.sleep(0.02)
        return jobs / (time.perf_counter() - started)
    finally:
        for proc in servers:
            proc.stop()


def sample_png_image() -> Image.Image:
    """A 512x512 picture with the detail of a generated one (smooth shapes plus fine noise)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:512, 0:512]
    base = np.stack([(x * 0.5) % 256, (y * 0.5) % 256, ((x + y) * 0.25) % 256], axis=-1)
    noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy)


def files(server: PostgresServer, repeats: int) -> dict[str, float]:
    """Median ms to write and read one 512x512 PNG locally and through the database, and bytes per image."""
    url = server.create_database(f"files_{int(time.time() * 1000)}")
    engine = JobStore(url).db
    local = FileStore(Path(tempfile.mkdtemp(prefix="sdedge-local-")))
    shared = FileStore(Path(tempfile.mkdtemp(prefix="sdedge-shared-")), SharedFiles(engine))
    other = FileStore(Path(tempfile.mkdtemp(prefix="sdedge-other-")), SharedFiles(engine))  # a second node
    image = sample_png_image()
    timings: dict[str, list[float]] = {key: [] for key in ("local_write", "local_read", "db_write", "db_read")}
    for i in range(repeats):
        for key, store, reader in (("local", local, local), ("db", shared, other)):
            started = time.perf_counter()
            name = store.save(f"job-{i:016x}-0", image, "parameters")
            timings[f"{key}_write"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            path = reader.path(name)  # on the other node: fetched from the database into its cache
            assert path is not None
            path.read_bytes()
            timings[f"{key}_read"].append((time.perf_counter() - started) * 1000)
            if reader is other:
                path.unlink()  # so every read goes to the database
    size = len((local.root / f"job-{0:016x}-0.png").read_bytes())
    from sqlalchemy import text

    with engine.connect() as conn:
        table_bytes = conn.execute(text("SELECT pg_total_relation_size('files')")).scalar() or 0
    return {**{key: statistics.median(values) for key, values in timings.items()}, "png_bytes": size,
            "db_bytes_per_image": table_bytes / repeats}


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print (or write) the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400, help="jobs per claim measurement")
    parser.add_argument("--e2e-jobs", type=int, default=40, help="jobs per end-to-end measurement")
    parser.add_argument("--repeats", type=int, default=20, help="PNG writes and reads per store")
    parser.add_argument("--write", type=Path, help="replace the measured section of this markdown file")
    args = parser.parse_args(argv)
    server = PostgresServer().init().start()
    try:
        claimed = {n: claims(server, n, args.jobs) for n in (1, 2, 4)}
        e2e = {n: end_to_end(server, n, args.e2e_jobs) for n in (1, 2)}
        measured = files(server, args.repeats)
    finally:
        server.remove()
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {multiprocessing.cpu_count()} cores, PostgreSQL 15 on loopback.",
        "",
        "| claimers | jobs/s (claim + fenced finish, no generation) | vs 1 |",
        "| --- | --- | --- |",
        *[f"| {n} | {rate:.0f} | {rate / claimed[1]:.2f}x |" for n, rate in claimed.items()],
        "",
        "| nodes (tiny model, 64x64, 1 step) | jobs/s | vs 1 |",
        "| --- | --- | --- |",
        *[f"| {n} | {rate:.2f} | {rate / e2e[1]:.2f}x |" for n, rate in e2e.items()],
        "",
        f"| 512x512 PNG ({measured['png_bytes'] / 1024:.0f} KiB) | write ms | read ms |",
        "| --- | --- | --- |",
        f"| local folder | {measured['local_write']:.1f} | {measured['local_read']:.2f} |",
        f"| database (read on another node) | {measured['db_write']:.1f} | {measured['db_read']:.2f} |",
        "",
        f"Database growth: {measured['db_bytes_per_image'] / 1024:.0f} KiB per image (PNG is already compressed).",
    ]
    report = "\n".join(lines)
    print(report)
    if args.write:
        text_before = args.write.read_text() if args.write.exists() else ""
        begin, end = "<!-- fleet-bench:begin -->", "<!-- fleet-bench:end -->"
        if begin in text_before:
            head, rest = text_before.split(begin, 1)
            text_after = head + begin + "\n" + report + "\n" + end + rest.split(end, 1)[1]
        else:
            text_after = text_before + f"\n{begin}\n{report}\n{end}\n"
        args.write.write_text(text_after)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
