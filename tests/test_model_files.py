"""Model resolution and download, against a fake Hugging Face hub served from 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import sdedge.model_files
from sdedge.config import Settings
from sdedge.errors import ModelDownloadError, ModelError
from sdedge.model_files import (
    ALLOW_PATTERNS,
    MARKER_NAME,
    OPTIONAL_FILES,
    REQUIRED_FILES,
    describe_model,
    download_model,
    hub_model_dir,
    missing_files,
    model_problem,
    resolve_model,
)
from conftest import FIXTURE_MODEL, make_settings

REPO = "test-org/tiny-sd-int8-ov"
SHA = "0123456789abcdef0123456789abcdef01234567"
CUT_FILE = "unet/openvino_model.bin"
# Files a real repo may carry that the runtime never needs: they must not be fetched.
EXTRAS = {
    "unet/diffusion_pytorch_model.safetensors": b"\0" * 4096,
    "text_encoder/model.onnx": b"\0" * 4096,
    "sample.png": b"\x89PNG fake",
    "v1-5-pruned.ckpt": b"\0" * 1024,
}


# --- the model folder the fake hub serves -----------------------------------------------------


def _write_fake_model(folder: Path, in_channels: int = 4) -> Path:
    """A folder with every required and optional file name (contents are not a real model)."""
    for name in (*REQUIRED_FILES, *OPTIONAL_FILES):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".bin"):
            path.write_bytes(hashlib.sha256(name.encode()).digest() * 256)  # 8 KiB, distinct per file
        else:
            path.write_text(json.dumps({"name": name}), encoding="utf-8")
    (folder / "unet" / "config.json").write_text(json.dumps({"in_channels": in_channels}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def model_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny fixture model when it is complete, else a fake folder with the same file names."""
    if FIXTURE_MODEL.is_dir() and not missing_files(FIXTURE_MODEL):
        return FIXTURE_MODEL
    return _write_fake_model(tmp_path_factory.mktemp("fake-model"))


def _read_tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the fake hub -------------------------------------------------------------------------------


@dataclass
class FakeHub:
    """State shared with the request handler; tests flip `deny` and `cut` to make it misbehave."""

    files: dict[str, bytes]
    url: str = ""
    deny: int | None = None  # answer every request with this status (401/403 = gated, as the hub says it)
    cut: str | None = None  # drop the connection half-way through this file, then answer 500 for it
    was_cut: bool = False
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fetched(self) -> set[str]:
        """Repo paths whose bodies were requested with GET."""
        return {name for method, path, _ in self.requests if method == "GET" and (name := _repo_file(path))}

    def touched(self) -> set[str]:
        """Repo paths requested in any way (HEAD or GET)."""
        return {name for _, path, _ in self.requests if (name := _repo_file(path))}


def _repo_file(path: str) -> str | None:
    """The file a /{repo}/resolve/{revision}/{file} URL path names, or None for other paths."""
    prefix = f"/{REPO}/resolve/"
    return path[len(prefix) :].split("/", 1)[1] if path.startswith(prefix) else None


# The X-Error-Code the hub sends with a refusal: huggingface_hub picks its exception class by it.
_DENY_CODES = {401: "GatedRepo", 403: "GatedRepo", 404: "RepoNotFound"}


def _is_lfs(name: str) -> bool:
    """Weights are stored with git LFS on the hub (by extension, as .gitattributes does)."""
    return name.endswith((".bin", ".safetensors", ".onnx", ".ckpt", ".png"))


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _etag(name: str, data: bytes) -> str:
    """The hub's ETag: the LFS sha256 for LFS files, else the git blob id."""
    return hashlib.sha256(data).hexdigest() if _is_lfs(name) else _git_blob_id(data)


class _HubHandler(BaseHTTPRequestHandler):
    """Just what the hub answers to huggingface_hub 0.x-2.x downloads.

    That is the model info API, the tree API (hub 2.x lists files with it) and HEAD/GET on resolve URLs.
    """

    protocol_version = "HTTP/1.1"
    hub: FakeHub

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        with self.hub.lock:
            self.hub.requests.append((self.command, path, self.headers.get("Authorization")))
        if self.hub.deny:
            return self._error(self.hub.deny, _DENY_CODES.get(self.hub.deny))
        if path in (f"/api/models/{REPO}", f"/api/models/{REPO}/revision/{SHA}", f"/api/models/{REPO}/revision/main"):
            return self._info()
        if path in (f"/api/models/{REPO}/tree/{SHA}", f"/api/models/{REPO}/tree/main"):
            return self._tree()
        name = _repo_file(path)
        if name is not None and name in self.hub.files:
            return self._file(name, body)
        self._error(404, "RepoNotFound" if "/api/" in path else "EntryNotFound")

    def _info(self) -> None:
        files = self.hub.files.items()
        siblings = [{"rfilename": name, "size": len(data), "blobId": _git_blob_id(data)} for name, data in files]
        self._send(200, json.dumps({"id": REPO, "modelId": REPO, "sha": SHA, "siblings": siblings}).encode())

    def _tree(self) -> None:
        # What huggingface_hub 2.x lists files with (recursive=true): files and the folders holding them.
        folders = {str(parent) for name in self.hub.files for parent in Path(name).parents if str(parent) != "."}
        entries: list[dict[str, object]] = [
            {"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0, "path": f}
            for f in sorted(folders)
        ]
        for name, data in sorted(self.hub.files.items()):
            entry: dict[str, object] = {"type": "file", "oid": _git_blob_id(data), "size": len(data), "path": name}
            if _is_lfs(name):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            entries.append(entry)
        self._send(200, json.dumps(entries).encode())

    def _file(self, name: str, body: bool) -> None:
        data = self.hub.files[name]
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        if body and name == self.hub.cut and self.hub.was_cut:
            # huggingface_hub retries a cut body (after a 1 s pause); failing the retry ends it at once.
            return self._error(500, None)
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", SHA)
        self.send_header("ETag", f'"{_etag(name, data)}"')
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if body:
            self._write_body(name, data[start:])

    def _write_body(self, name: str, data: bytes) -> None:
        if name == self.hub.cut:
            self.wfile.write(data[: len(data) // 2])  # the promised Content-Length never arrives
            self.hub.was_cut = True
            self.close_connection = True
            return
        self.wfile.write(data)

    def _error(self, status: int, code: str | None) -> None:
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self._send_headers_and_body(b'{"error": "no"}')

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("X-Repo-Commit", SHA)
        self._send_headers_and_body(payload)

    def _send_headers_and_body(self, payload: bytes) -> None:
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _start_hub(files: dict[str, bytes]) -> tuple[FakeHub, ThreadingHTTPServer]:
    hub = FakeHub(files=files)
    handler = type("Handler", (_HubHandler,), {"hub": hub})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    return hub, server


@pytest.fixture
def hub(model_source: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running fake hub serving the model (plus files that must not be fetched); HF_ENDPOINT points at it."""
    fake, server = _start_hub({**_read_tree(model_source), **EXTRAS})
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def hub_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, stable_diffusion_repo_id=REPO)


# --- downloading ------------------------------------------------------------------------------


def test_download_fetches_only_allowed_files_and_marks_complete(hub: FakeHub, hub_settings: Settings) -> None:
    progress: list[tuple[int, int]] = []
    folder = download_model(hub_settings, show_progress=False, on_progress=lambda d, t: progress.append((d, t)))

    assert folder == hub_model_dir(hub_settings)
    assert folder == hub_settings.models_cache_dir / "stable-diffusion" / "test-org--tiny-sd-int8-ov"
    assert missing_files(folder) == []
    assert not hub.touched() & set(EXTRAS), "weights/images outside ALLOW_PATTERNS were requested"
    assert set(REQUIRED_FILES) <= hub.fetched()
    marker = json.loads((folder / MARKER_NAME).read_text())
    assert marker == {"repo_id": REPO, "revision": SHA}
    assert resolve_model(hub_settings) == folder
    assert model_problem(hub_settings) is None
    total = sum(len(hub.files[name]) for name in hub.fetched())
    assert progress and progress[-1] == (total, total)


def test_allow_patterns_exclude_weights_and_images() -> None:
    from huggingface_hub.utils import filter_repo_objects

    names = [*REQUIRED_FILES, *OPTIONAL_FILES, *EXTRAS, "unet/model.onnx_data", "feature_extractor/x.png"]
    kept = set(filter_repo_objects(names, allow_patterns=ALLOW_PATTERNS))
    assert kept == set(REQUIRED_FILES) | set(OPTIONAL_FILES)


@pytest.mark.parametrize("how", ["env", "setting"])
def test_token_is_sent_as_bearer(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "env":
        monkeypatch.setenv("HF_TOKEN", "hf_from_env")
        settings = make_settings(tmp_path, stable_diffusion_repo_id=REPO)
        expected = "Bearer hf_from_env"
    else:
        settings = make_settings(tmp_path, stable_diffusion_repo_id=REPO, huggingface_token="hf_from_setting")
        expected = "Bearer hf_from_setting"

    download_model(settings, show_progress=False)

    assert hub.requests
    assert {auth for _, _, auth in hub.requests} == {expected}


def test_gated_repo_401_asks_for_a_token(hub: FakeHub, hub_settings: Settings) -> None:
    hub.deny = 401

    with pytest.raises(ModelDownloadError) as caught:
        download_model(hub_settings, show_progress=False)

    message = str(caught.value)
    assert REPO in message and "HUGGINGFACE_TOKEN" in message and "401" in message
    assert "\n" not in message
    assert not (hub_model_dir(hub_settings) / MARKER_NAME).exists()
    assert resolve_model(hub_settings) is None


def test_unknown_repo_is_reported_as_not_found(hub: FakeHub, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, stable_diffusion_repo_id="test-org/no-such-model")

    with pytest.raises(ModelDownloadError, match=r"test-org/no-such-model was not found .*HTTP 404"):
        download_model(settings, show_progress=False)


def test_unreachable_hub(hub_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")

    with pytest.raises(ModelDownloadError, match=rf"cannot reach the model hub at http://127.0.0.1:{port} .*{REPO}"):
        download_model(hub_settings, show_progress=False)
    assert resolve_model(hub_settings) is None


def test_interrupted_download_is_not_loaded_and_resumes(hub: FakeHub, hub_settings: Settings) -> None:
    hub.cut = CUT_FILE

    with pytest.raises(ModelDownloadError, match="interrupted"):
        download_model(hub_settings, show_progress=False)

    folder = hub_model_dir(hub_settings)
    assert CUT_FILE in missing_files(folder)
    assert not (folder / MARKER_NAME).exists()
    assert resolve_model(hub_settings) is None
    problem = model_problem(hub_settings)
    assert problem is not None and "interrupted" in problem and "sdedge download" in problem

    hub.cut = None
    hub.requests.clear()
    assert download_model(hub_settings, show_progress=False) == folder

    assert resolve_model(hub_settings) == folder
    assert (folder / CUT_FILE).read_bytes() == hub.files[CUT_FILE]
    assert hub.fetched() == {CUT_FILE}, "files finished by the first attempt were fetched again"


@pytest.mark.parametrize("partial", [False, True], ids=["empty", "partial"])
def test_hub_lost_after_model_info_is_an_interruption(
    hub: FakeHub, hub_settings: Settings, monkeypatch: pytest.MonkeyPatch, partial: bool
) -> None:
    # huggingface_hub 0.x/1.x return a half-filled local_dir when they cannot reach the hub; 2.x raise.
    if partial:
        hub.cut = CUT_FILE
        with pytest.raises(ModelDownloadError, match="interrupted"):
            download_model(hub_settings, show_progress=False)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    remote_revision = sdedge.model_files._remote_revision

    def then_lose_the_hub(settings: Settings) -> tuple[str, int, frozenset[str]]:
        answer = remote_revision(settings)
        monkeypatch.setenv("HF_ENDPOINT", dead)
        return answer

    monkeypatch.setattr(sdedge.model_files, "_remote_revision", then_lose_the_hub)
    monkeypatch.setattr(time, "sleep", lambda _: None)  # hub 2.x backs off 23 s retrying the dead hub

    with pytest.raises(ModelDownloadError, match=rf"download of {REPO} was interrupted .*sdedge download"):
        download_model(hub_settings, show_progress=False)
    assert resolve_model(hub_settings) is None
    assert not (hub_model_dir(hub_settings) / MARKER_NAME).exists()


def test_snapshot_without_required_files_is_rejected(
    model_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _read_tree(model_source)
    del files["unet/openvino_model.bin"]
    fake, server = _start_hub(files)
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    settings = make_settings(tmp_path, stable_diffusion_repo_id=REPO)
    try:
        with pytest.raises(ModelDownloadError, match=rf"{REPO} lacks files the runtime needs: unet/openvino_model.bin"):
            download_model(settings, show_progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert not (hub_model_dir(settings) / MARKER_NAME).exists()
    assert resolve_model(settings) is None


def test_complete_folder_needs_no_network(hub: FakeHub, hub_settings: Settings) -> None:
    folder = download_model(hub_settings, show_progress=False)
    seen = len(hub.requests)

    assert download_model(hub_settings, show_progress=False) == folder
    assert len(hub.requests) == seen


def test_force_downloads_again(hub: FakeHub, hub_settings: Settings) -> None:
    folder = download_model(hub_settings, show_progress=False)
    (folder / "model_index.json").write_text("{}")  # a local edit that force must undo
    hub.requests.clear()

    download_model(hub_settings, force=True, show_progress=False)

    assert "model_index.json" in hub.fetched()
    assert (folder / "model_index.json").read_bytes() == hub.files["model_index.json"]
    assert resolve_model(hub_settings) == folder


def test_missing_hub_model_without_auto_download(hub_settings: Settings) -> None:
    assert resolve_model(hub_settings) is None
    problem = model_problem(hub_settings)
    assert problem is not None and REPO in problem and "AUTO_DOWNLOAD_MODELS=false" in problem


# --- local folders ----------------------------------------------------------------------------


def test_local_folder_with_missing_file(model_source: Path, tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    shutil.copytree(model_source, folder)
    (folder / "vae_decoder" / "openvino_model.xml").unlink()
    settings = make_settings(tmp_path, stable_diffusion_repo_id=str(folder))

    assert settings.model_is_local
    assert resolve_model(settings) is None
    problem = model_problem(settings)
    assert problem is not None and "vae_decoder/openvino_model.xml" in problem and str(folder) in problem
    with pytest.raises(ModelError, match="vae_decoder/openvino_model.xml"):
        download_model(settings, show_progress=False)


def test_nonexistent_local_folder_is_not_sent_to_the_hub(hub: FakeHub, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, stable_diffusion_repo_id=str(tmp_path / "typo" / "model"))

    assert resolve_model(settings) is None
    assert (
        model_problem(settings)
        == f"model folder {tmp_path / 'typo' / 'model'} does not exist (STABLE_DIFFUSION_REPO_ID): point it at an "
        "OpenVINO export or a hub repo id, or set USE_MOCKS=true to try the page"
    )
    assert describe_model(settings)["source"] == "local"
    with pytest.raises(ModelError, match="does not exist"):
        download_model(settings, show_progress=False)
    assert hub.requests == []


def test_empty_file_counts_as_missing(model_source: Path, tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    shutil.copytree(model_source, folder)
    (folder / "unet" / "openvino_model.bin").write_bytes(b"")

    assert missing_files(folder) == ["unet/openvino_model.bin"]


def test_complete_local_folder_is_used_as_is(model_source: Path, tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    shutil.copytree(model_source, folder)
    settings = make_settings(tmp_path, stable_diffusion_repo_id=str(folder))

    assert resolve_model(settings) == folder
    assert model_problem(settings) is None
    assert download_model(settings, show_progress=False) == folder
    assert not (folder / MARKER_NAME).exists()  # a user's folder is never written to


# --- describe_model ---------------------------------------------------------------------------


def test_describe_model_before_and_after_download(hub: FakeHub, hub_settings: Settings) -> None:
    before = describe_model(hub_settings)
    assert before == {
        "id": REPO,
        "source": "hub",
        "path": None,
        "present": False,
        "complete": False,
        "missing": list(REQUIRED_FILES),
        "size_bytes": 0,
        "inpainting": False,
        "has_vae_encoder": False,
    }

    folder = download_model(hub_settings, show_progress=False)
    after = describe_model(hub_settings)
    assert after["path"] == str(folder)
    assert after["present"] is True and after["complete"] is True and after["missing"] == []
    assert after["size_bytes"] == sum(len(hub.files[name]) for name in hub.fetched())
    assert after["has_vae_encoder"] is True
    assert after["inpainting"] is False


def test_describe_local_inpainting_model_without_vae_encoder(tmp_path: Path) -> None:
    folder = _write_fake_model(tmp_path / "inpaint", in_channels=9)
    shutil.rmtree(folder / "vae_encoder")
    settings = make_settings(tmp_path, stable_diffusion_repo_id=str(folder))

    info = describe_model(settings)

    assert info["source"] == "local" and info["id"] == str(folder) and info["path"] == str(folder)
    assert info["complete"] is True and info["missing"] == []
    assert info["inpainting"] is True
    assert info["has_vae_encoder"] is False
    assert info["size_bytes"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_the_cli_download_shows_one_byte_bar_to_the_end(hub: FakeHub, hub_settings: Settings,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from sdedge.cli_generate import download_with_bar

    folder = download_with_bar(hub_settings, force=True)
    err = capsys.readouterr().err
    total = sum(len(hub.files[name]) for name in hub.fetched())
    assert missing_files(folder) == [] and "downloading: 100%" in err and "B/s" in err
    assert total > 0
