"""The queue across process deaths, graceful stops and streaming, with `sdedge serve` as a real process."""

from __future__ import annotations

import http.client
import json
import signal
import time
from pathlib import Path
from typing import Any

from conftest import wait_for
from serverproc import ServerProcess

SLOW = {"prompt": "a windmill", "width": 512, "height": 512, "steps": 12, "seed": 3}


def submit(server: ServerProcess, **fields: Any) -> str:
    status, body = server.request("POST", "/generate/text2img", {**SLOW, **fields})
    assert status == 202, body
    return str(body["id"])


def job(server: ServerProcess, job_id: str) -> dict[str, Any]:
    return server.request("GET", f"/jobs/{job_id}")[1]  # type: ignore[no-any-return]


def running_at_step(server: ServerProcess, job_id: str, step: int = 1) -> bool:
    view = job(server, job_id)
    return view["status"] == "processing" and view["progressDetail"]["step"] >= step


def test_kill_9_loses_no_job(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path).start()
    first.wait_ready()
    ids = [submit(first) for _ in range(3)]
    wait_for(lambda: running_at_step(first, ids[0]), 120)
    assert first.proc is not None
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)

    second = ServerProcess(tmp_path).start()
    try:
        second.wait_ready()
        done = [wait_for(lambda i=i: (j := job(second, i))["status"] in ("completed", "failed") and j, 180) for i in ids]
        assert [d["status"] for d in done] == ["completed"] * 3
        assert done[0]["attempts"] == 2  # re-queued once after the crash
        for view in done:
            status, data = second.request("GET", view["result"]["urls"][0])
            assert status == 200 and data[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        second.stop()


def test_sigterm_exits_quickly_and_the_job_survives(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path).start()
    first.wait_ready()
    job_id = submit(first, steps=30)
    wait_for(lambda: running_at_step(first, job_id), 120)
    assert first.proc is not None
    stopped_at = time.monotonic()
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=15) == 0
    assert time.monotonic() - stopped_at < 10

    second = ServerProcess(tmp_path).start()
    try:
        second.wait_ready()
        view = job(second, job_id)
        assert view["status"] in ("queued", "processing") and view["attempts"] <= 1  # a clean stop costs no attempt
        done = wait_for(lambda: (j := job(second, job_id))["status"] == "completed" and j, 180)
        assert done["progressDetail"]["step"] == done["progressDetail"]["total"]
    finally:
        second.stop()


def test_events_stream_live_and_health_stays_fast(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        server.wait_ready()
        job_id = submit(server, steps=16)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        conn.request("GET", f"/jobs/{job_id}/events")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
        first_event = _read_event(response)
        # The first event arrived while the job still runs: the stream is not buffered to the end.
        assert first_event[0] == "progress" and job(server, job_id)["status"] in ("queued", "processing")
        latencies = _health_latencies(server, 20)
        events = [first_event]
        while events[-1][0] != "done":
            events.append(_read_event(response))
        conn.close()
        kinds = {kind for kind, _ in events}
        assert {"progress", "preview", "done"} <= kinds
        assert events[-1][1]["status"] == "completed"
        assert max(latencies) < 1.0, latencies
    finally:
        server.stop()


def _read_event(response: http.client.HTTPResponse) -> tuple[str, Any]:
    kind, data = "", ""
    while True:
        line = response.readline().decode()
        if not line:
            raise AssertionError("stream ended without an event")
        if line.startswith("event: "):
            kind = line[7:].strip()
        elif line.startswith("data: "):
            data = line[6:].strip()
        elif line == "\n" and kind:
            return kind, json.loads(data)


def _health_latencies(server: ServerProcess, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        status, _ = server.request("GET", "/health")
        latencies.append(time.perf_counter() - started)
        assert status == 200
    return latencies
