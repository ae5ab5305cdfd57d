"""Faults survived: a full disk, the database going away and coming back, SIGKILL in the middle of a PNG write.

Each runs against the real engine; the disk and crash cases in a real `sdedge serve` process.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import make_settings, start_app, wait_for
from pgserver import PostgresServer
from serverproc import ServerProcess

FAULTS = Path(__file__).parent / "faults"


def finished(server: ServerProcess, job_id: str, timeout: float = 120) -> dict[str, Any]:
    return wait_for(lambda: (job := server.request("GET", f"/jobs/{job_id}")[1])["status"]
                    in ("completed", "failed", "canceled") and job, timeout=timeout, interval=0.05)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real filesystem that fills up."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the disk-full test needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    """A filler file taking all but about leave_bytes of the disk."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - leave_bytes))
    return filler


def test_a_full_disk_fails_the_job_with_disk_full_and_the_server_lives_on(tmp_path: Path, tiny_disk: Path) -> None:
    server = ServerProcess(tmp_path, GENERATED_IMAGES_DIR=str(tiny_disk), OPENVINO_DEVICE="CPU", MIN_FREE_DISK_MB="0",
                           PREVIEW_MIN_INTERVAL_MS="0").start()
    try:
        server.wait_ready()
        filler = fill(tiny_disk, leave_bytes=2048)  # less than one 256x256 preview or image
        status, job = server.request("POST", "/generate/text2img", {"prompt": "x", "width": 256, "height": 256,
                                                                    "steps": 4})
        assert status == 202, job
        failed = finished(server, job["id"])
        assert failed["status"] == "failed" and failed["errorDetail"]["code"] == "disk_full", failed
        assert not list(tiny_disk.glob(".*.part")), "a partial file was left behind"
        status, health = server.request("GET", "/health")
        assert status == 200 and health["disk"]["low"] and "full" in health["disk"]["warning"]
        filler.unlink()  # space returns
        status, job = server.request("POST", "/generate/text2img", {"prompt": "x", "width": 64, "height": 64})
        done = finished(server, job["id"])
        assert done["status"] == "completed", done
        assert server.proc is not None and server.proc.poll() is None
        status, health = server.request("GET", "/health")
        assert not health["disk"]["low"]
    finally:
        server.stop()


def test_sigkill_during_the_png_write_loses_nothing(tmp_path: Path) -> None:
    flag = tmp_path / "kill-in-png-write"
    flag.touch()
    env = {"PYTHONPATH": str(FAULTS), "SDEDGE_FAULT_KILL_IN_PNG_WRITE": str(flag), "OPENVINO_DEVICE": "CPU"}
    first = ServerProcess(tmp_path, **env).start()
    first.wait_ready()
    status, job = first.request("POST", "/generate/text2img", {"prompt": "a lighthouse", "seed": 3})
    assert status == 202
    assert first.proc is not None and first.proc.wait(timeout=120) == -9  # killed inside the PNG write
    generated = tmp_path / "generated"
    assert list(generated.glob(".*.part")), "the crash left its partial file (the sweep must remove it)"
    flag.unlink()
    second = ServerProcess(tmp_path, **env).start()
    try:
        second.wait_ready()
        done = finished(second, job["id"])
        assert done["status"] == "completed" and done["attempts"] == 2, done
        status, data = second.request("GET", done["result"]["urls"][0])
        assert status == 200 and Image.open(io.BytesIO(data)).size == (64, 64)
        assert not list(generated.glob(".*.part"))
        assert len(second.request("GET", "/jobs")[1]["jobs"]) == 1  # run again, not twice over
    finally:
        second.stop()


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().init().start()
    yield server
    server.remove()


def test_a_database_restart_kills_no_worker_and_loses_no_job(tmp_path: Path, postgres: PostgresServer) -> None:
    app = start_app(make_settings(tmp_path, database_url=postgres.create_database("outage"),
                                  worker_poll_seconds=0.2))
    client, worker = app.test_client(), app.extensions["sdedge"].worker
    long_job = client.post("/generate/text2img", json={"prompt": "x", "width": 512, "height": 512, "steps": 40})
    queued = client.post("/generate/text2img", json={"prompt": "y", "seed": 9})
    running_id, queued_id = long_job.get_json()["id"], queued.get_json()["id"]
    wait_for(lambda: client.get(f"/jobs/{running_id}").get_json()["progressDetail"]["step"] >= 1, timeout=120)
    postgres.stop()
    try:
        health = wait_for(lambda: (h := client.get("/health")).status_code == 503 and h, timeout=30)
        assert "database" in health.get_json()["reason"]
        refused = client.post("/generate/text2img", json={"prompt": "z"})
        assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "database_unavailable"
        wait_for(lambda: worker.database_error is not None, timeout=60)  # the running job's writes hit the outage
        assert worker.workers[0]._thread is not None and worker.workers[0]._thread.is_alive()
    finally:
        postgres.start()
    wait_for(lambda: client.get("/health").status_code == 200, timeout=60)
    jobs = {job_id: wait_for(lambda job_id=job_id: (j := client.get(f"/jobs/{job_id}").get_json())["status"]
                             in ("completed", "failed") and j, timeout=180)
            for job_id in (running_id, queued_id)}
    assert [job["status"] for job in jobs.values()] == ["completed", "completed"], jobs
    assert [job["attempts"] for job in jobs.values()] == [1, 1]  # each ran exactly once
    assert worker.workers[0]._thread.is_alive()
