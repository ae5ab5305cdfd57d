"""`sdedge serve` as a real process under waitress, on the tiny fixture."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serverproc import ServerProcess, sdedge_command


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # OPENVINO_DEVICE is left at its default, GPU: this machine has none, so the server must fall back.
    proc = ServerProcess(tmp_path_factory.mktemp("server")).start()
    proc.wait_ready()
    yield proc
    proc.stop()


def generate(server: ServerProcess, **fields: object) -> dict:
    status, body = server.request("POST", "/image", {"prompt": "a lighthouse", **fields})
    assert status == 200, body
    return body


def test_health_reports_cpu_fallback(server: ServerProcess) -> None:
    status, body = server.request("GET", "/health")
    assert status == 200 and body["device"] == {"requested": "GPU", "actual": "CPU"}


def test_image_urls_load_and_same_seed_same_pixels(server: ServerProcess) -> None:
    images = []
    for _ in range(2):
        url = generate(server, seed=99, width=64, height=96)["urls"][0]
        status, data = server.request("GET", url)
        assert status == 200
        images.append(np.asarray(Image.open(io.BytesIO(data))))
    assert images[0].shape == (96, 64, 3)
    assert np.array_equal(images[0], images[1])


@pytest.mark.parametrize(
    ("body", "raw", "content_type", "status"),
    [
        ({"seed": 1}, None, "application/json", 400),
        ({"prompt": "x", "width": 7}, None, "application/json", 400),
        ({"prompt": "x", "steps": 10000}, None, "application/json", 400),
        (None, b"draw me a sheep", "text/plain", 415),
        ({"prompt": "x" * 10 * 1024 * 1024}, None, "application/json", 400),
    ],
)
def test_bad_input_is_a_json_4xx_and_server_keeps_serving(
    server: ServerProcess, body: object, raw: bytes | None, content_type: str, status: int
) -> None:
    got, answer = server.request("POST", "/image", body, raw=raw, content_type=content_type)
    assert got == status and set(answer["error"]) == {"code", "message", "details"}
    assert generate(server)["urls"]


def test_invalid_setting_stops_startup_with_one_line(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, OPENVINO_DEVICE="TPU")
    result = subprocess.run([*sdedge_command(), "serve"], env=proc.env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "OPENVINO_DEVICE" in lines[0]


def test_waitress_serve_call_works(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path, OPENVINO_DEVICE="CPU")
    command = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{proc.port}", "--call", "sdedge:create_app"]
    proc.start(command)
    try:
        assert proc.wait_ready()["device"]["actual"] == "CPU"
    finally:
        proc.stop()


def test_a_body_over_the_limit_is_refused_from_its_content_length(server: ServerProcess) -> None:
    """waitress answers from the header, before reading (or buffering) a byte of the body."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /image HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000000000\r\n\r\n{")
        answer = sock.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
