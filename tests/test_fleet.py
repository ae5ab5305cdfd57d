"""A fleet: two `sdedge serve` processes on one real PostgreSQL, sharing the queue, the files and the work."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import wait_for
from pgserver import PostgresServer
from serverproc import ServerProcess

LEASE = 6.0
FINISHED = ("completed", "failed", "canceled")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().init().start()
    yield server
    server.remove()


def node(tmp_path: Path, name: str, url: str) -> ServerProcess:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    return ServerProcess(folder, DATABASE_URL=url, OPENVINO_DEVICE="CPU", NODE_NAME=name,
                         LEASE_SECONDS=str(LEASE), WORKER_POLL_SECONDS="0.2")


def data_url(colour: str) -> str:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def job_body(index: int) -> tuple[str, dict[str, Any]]:
    """Text, image-to-image and inpainting jobs in turn."""
    base = {"prompt": f"job {index}", "seed": index, "steps": 2}
    if index % 3 == 1:
        return "img2img", {**base, "init_image": data_url("#3a7bd5"), "strength": 0.6}
    if index % 3 == 2:
        return "inpaint", {**base, "image": data_url("#f5b700"), "mask": data_url("#ffffff")}
    return "text2img", base


def finished(server: ServerProcess, job_id: str, timeout: float = 300) -> dict[str, Any]:
    return wait_for(lambda: (j := server.request("GET", f"/jobs/{job_id}")[1])["status"] in FINISHED and j,
                    timeout=timeout, interval=0.1)


def test_two_nodes_share_one_queue_and_serve_every_file(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.create_database("two_nodes")
    nodes = [node(tmp_path, "alpha", url).start(), node(tmp_path, "beta", url).start()]
    try:
        for server in nodes:
            server.wait_ready()
        submitted = []
        for index in range(40):
            mode, body = job_body(index)
            status, job = nodes[index % 2].request("POST", f"/generate/{mode}", body)
            assert status == 202, job
            submitted.append((index % 2, job["id"]))
        done = [finished(nodes[0], job_id) for _, job_id in submitted]
        assert [job["status"] for job in done] == ["completed"] * 40, [j["error"] for j in done if j["error"]]
        assert {job["attempts"] for job in done} == {1}  # each ran exactly once
        ran_on = {job["node"]["name"] for job in done}
        assert ran_on == {"alpha", "beta"}, ran_on  # both nodes worked
        moved = [job for (at, _), job in zip(submitted, done) if job["type"] != "text2img"
                 and job["node"]["name"] != ("alpha", "beta")[at]]
        assert moved, "no image job ran on the node it was not submitted to (its inputs must be shared)"
        for job in done:
            image_url, preview_url = job["result"]["urls"][0], f"/generated/{job['id']}-preview.png"
            answers = [server.request("GET", image_url) for server in nodes]
            assert [status for status, _ in answers] == [200, 200] and answers[0][1] == answers[1][1]
            assert [server.request("GET", preview_url)[0] for server in nodes] == [200, 200]
        status, queue = nodes[1].request("GET", "/queue/status")
        assert {n["name"] for n in queue["nodes"]} == {"alpha", "beta"}
        assert nodes[0].request("DELETE", f"/jobs/{done[0]['id']}")[0] == 200  # deleting on one node...
        assert nodes[1].request("GET", done[0]["result"]["urls"][0])[0] == 404  # ...deletes on every node
    finally:
        for server in nodes:
            server.stop()


def test_a_killed_node_s_job_is_resumed_by_the_other_and_never_run_twice(tmp_path: Path,
                                                                         postgres: PostgresServer) -> None:
    url = postgres.create_database("kill_nine")
    alpha, beta = node(tmp_path, "alpha", url).start(), node(tmp_path, "beta", url).start()
    restarted = None
    try:
        alpha.wait_ready()
        beta.wait_ready()
        status, job = alpha.request("POST", "/generate/text2img", {"prompt": "long", "width": 512, "height": 512,
                                                                   "steps": 40})
        running = wait_for(lambda: (j := alpha.request("GET", f"/jobs/{job['id']}")[1])["status"] == "processing"
                           and j["progressDetail"]["step"] >= 1 and j, timeout=120, interval=0.1)
        victim, survivor = (alpha, beta) if running["node"]["name"] == "alpha" else (beta, alpha)
        assert victim.proc is not None
        victim.proc.kill()
        victim.proc.wait(30)
        resumed = wait_for(lambda: (j := survivor.request("GET", f"/jobs/{job['id']}")[1])["attempts"] == 2
                           and j["status"] == "processing" and j, timeout=LEASE + 30, interval=0.1)
        assert resumed["node"]["name"] == ("beta" if victim is alpha else "alpha")
        done = finished(survivor, job["id"])
        assert done["status"] == "completed" and done["attempts"] == 2, done
        restarted = node(tmp_path, victim.env["NODE_NAME"], url).start()  # same folder: the same node id
        restarted.wait_ready()
        status, other = survivor.request("POST", "/generate/text2img", {"prompt": "after the restart", "steps": 2})
        assert finished(survivor, other["id"])["status"] == "completed"
        again = survivor.request("GET", f"/jobs/{job['id']}")[1]
        assert again["attempts"] == 2 and again["finished_at"] == done["finished_at"]  # not run or touched again
    finally:
        for server in (alpha, beta, restarted):
            if server is not None:
                server.stop()
