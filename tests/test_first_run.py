"""The README's way: the installed `sdedge serve` (and `waitress-serve --call`) started from an empty
working folder with no path settings at all, then an image generated, fetched and its files found
where the defaults say. A default path resolved anywhere but the working folder fails here."""

from __future__ import annotations

import base64
import io
import shutil
import socket
from pathlib import Path

import pytest
from PIL import Image

import sdedge
from conftest import make_settings, start_app
from sdedge.cli import main
from serverproc import ServerProcess


def fetch_png(server: ServerProcess, url: str) -> Image.Image:
    status, data = server.request("GET", url)
    assert status == 200, (url, status, data[:300] if isinstance(data, bytes) else data)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def check_default_paths(server: ServerProcess) -> None:
    """/health names the folders under the working folder, and the package folder got nothing."""
    _, health = server.request("GET", "/health")
    work = server.cwd.resolve()
    assert health["paths"] == {"generated_images_dir": str(work / "data" / "generated"),
                               "models_cache_dir": str(work / "data" / "models"), "data_dir": str(work / "data")}
    package = Path(sdedge.__file__).resolve().parent
    assert not (package / "data").exists(), f"a default path resolved inside the package: {package / 'data'}"


@pytest.mark.slow
def test_sdedge_serve_from_an_empty_folder_serves_its_images(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, defaults=True).start()
    try:
        server.wait_ready()
        status, body = server.request("POST", "/image", {"prompt": "a lighthouse", "width": 96, "height": 64,
                                                         "steps": 3, "seed": 7})
        assert status == 200, body
        assert fetch_png(server, body["urls"][0]).size == (96, 64)
        # img2img stores its input under DATA_DIR/inputs and writes a step preview: both default paths.
        source = io.BytesIO()
        Image.new("RGB", (64, 64), "#3a7bd5").save(source, format="PNG")
        init = "data:image/png;base64," + base64.b64encode(source.getvalue()).decode()
        status, body = server.request("POST", "/image", {"mode": "img2img", "prompt": "x", "init_image": init,
                                                         "steps": 4, "strength": 0.5, "width": 64, "height": 64})
        assert status == 200, body
        assert fetch_png(server, body["urls"][0]).size == (64, 64)
        assert fetch_png(server, f"/generated/{body['job_id']}-preview.png").size == (64, 64)
        check_default_paths(server)
        found = files_under(server.cwd)
        assert f"data/generated/{body['job_id']}-0.png" in found and "data/jobs.db" in found
        assert any(name.startswith("data/inputs/in-") for name in found), found
        assert any(name.startswith("data/models/ov-cache/") for name in found), "no compile cache under the cwd"
    finally:
        server.stop()


@pytest.mark.slow
def test_waitress_serve_call_from_an_empty_folder_serves_its_images(tmp_path: Path) -> None:
    waitress = shutil.which("waitress-serve")
    assert waitress, "waitress-serve is installed with sdedge"
    server = ServerProcess(tmp_path, defaults=True)
    server.start([waitress, f"--listen=127.0.0.1:{server.port}", "--call", "sdedge:create_app"])
    try:
        server.wait_ready()
        status, body = server.request("POST", "/image", {"prompt": "a red fox", "width": 64, "height": 80, "steps": 2})
        assert status == 200, body
        assert fetch_png(server, body["urls"][0]).size == (64, 80)
        check_default_paths(server)
    finally:
        server.stop()


def dead_hub(monkeypatch: pytest.MonkeyPatch) -> str:
    """HF_ENDPOINT pointing at a port nothing listens on: the hub is unreachable, as offline."""
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    return endpoint


def assert_names_the_ways_forward(message: str) -> None:
    for way in ("STABLE_DIFFUSION_REPO_ID", "HF_ENDPOINT", "USE_MOCKS=true", "sdedge download"):
        assert way in message, f"{way} missing from: {message}"


def test_offline_first_start_says_what_to_do_and_every_route_refuses_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead_hub(monkeypatch)
    client = start_app(make_settings(tmp_path, stable_diffusion_repo_id="OpenVINO/stable-diffusion-v1-5-int8-ov",
                                     auto_download_models=True)).test_client()
    health = client.get("/health")
    assert health.status_code == 503 and health.get_json()["status"] == "failed"
    reason = health.get_json()["reason"]
    assert "cannot reach the model hub" in reason
    assert_names_the_ways_forward(reason)
    for path, body in (("/generate/text2img", {"prompt": "x"}), ("/image", {"prompt": "x"}),
                       ("/sdapi/v1/txt2img", {"prompt": "x"}), ("/v1/images/generations", {"prompt": "x"})):
        answer = client.post(path, json=body)
        assert answer.status_code == 503, (path, answer.get_json())
        assert "cannot reach the model hub" in answer.get_json()["error"]["message"], path
    assert client.get("/jobs").get_json()["jobs"] == []  # nothing piled up behind the dead engine


def test_sdedge_download_offline_names_the_ways_forward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    dead_hub(monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert main(["download"]) == 1
    assert_names_the_ways_forward(capsys.readouterr().err)
