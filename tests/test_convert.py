"""`sdedge convert`: the tiny autoencoder (TAESD/TAESDXL) as the IR the fast decoder reads, converted from
AutoencoderTiny weights (needs the convert extra; skipped without torch) or downloaded as a published
OpenVINO export from a local stand-in of the hub (no torch)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from sdedge.cli import main
from sdedge.convert import ConvertError, run_convert
from sdedge.tiny_autoencoder import (
    DECODER_DIR, ENCODER_DIR, TINY_CONFIG, TinyAutoencoderError, check_tiny_autoencoder, convert_tiny_autoencoder,
    default_weights, download_tiny_autoencoder, genai_config, model_family,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tiny-sd-int8-ov"
HAS_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "diffusers"))
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs the convert extra (torch, diffusers)")
SHA = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A copy of the tiny model without its tiny autoencoder."""
    folder = tmp_path / "model"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("vae_*_tiny"))
    return folder


def decode(folder: Path, latent: np.ndarray) -> np.ndarray:
    """The fast decoder's image (uint8 NHWC) for a latent, through openvino-genai."""
    import openvino as ov
    import openvino_genai as g

    parts = (g.Scheduler.from_config(folder / "scheduler" / "scheduler_config.json"),
             g.CLIPTextModel(folder / "text_encoder"), g.UNet2DConditionModel(folder / "unet"),
             g.AutoencoderKL(folder / ENCODER_DIR, folder / DECODER_DIR))
    pipe = g.Text2ImagePipeline.stable_diffusion(*parts)
    pipe.compile("CPU")
    return np.asarray(pipe.decode(ov.Tensor(latent)).data)


def set_family(folder: Path, cls: str) -> None:
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": cls}))


# -- which weights, which family ---------------------------------------------------------------
@pytest.mark.parametrize("cls, family, weights", [
    ("StableDiffusionPipeline", "sd", "madebyollin/taesd"),
    ("LatentConsistencyModelPipeline", "sd", "madebyollin/taesd"),
    ("StableDiffusionXLPipeline", "sdxl", "madebyollin/taesdxl"),
])
def test_the_family_picks_the_weights(model: Path, cls: str, family: str, weights: str) -> None:
    set_family(model, cls)
    assert (model_family(model), default_weights(model)) == (family, weights)


@pytest.mark.parametrize("cls", ["FluxPipeline", "StableDiffusion3Pipeline", ""])
def test_families_without_a_tiny_autoencoder_are_refused(model: Path, cls: str) -> None:
    set_family(model, cls)
    with pytest.raises(TinyAutoencoderError, match="no tiny autoencoder"):
        convert_tiny_autoencoder(model)


def test_taesdxl_on_an_sd_model_is_refused(model: Path) -> None:
    if not HAS_TORCH:
        pytest.skip("the check runs after the torch check")
    with pytest.raises(TinyAutoencoderError, match="is for SDXL"):
        convert_tiny_autoencoder(model, "madebyollin/taesdxl")


def test_genai_config_has_the_keys_genai_reads() -> None:
    config = genai_config({"decoder_block_out_channels": (8, 8, 8, 8), "latent_channels": 4, "scaling_factor": 1.0,
                           "_name_or_path": "/tmp/x"}, "test")
    assert config["block_out_channels"] == [8, 8, 8, 8] and config["shift_factor"] == 0.0
    assert config["_class_name"] == "AutoencoderTiny" and "_name_or_path" not in config


# -- conversion (convert extra) ----------------------------------------------------------------
@pytest.fixture(scope="module")
def taesd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight AutoencoderTiny saved the way madebyollin/taesd is (diffusers folder)."""
    if not HAS_TORCH:
        pytest.skip("needs the convert extra (torch, diffusers)")
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(3)
    folder = tmp_path_factory.mktemp("taesd")
    AutoencoderTiny(**TINY_CONFIG).save_pretrained(folder)
    return folder


@needs_torch
def test_convert_exports_weights_that_decode_like_diffusers(model: Path, taesd_folder: Path) -> None:
    import torch
    from diffusers import AutoencoderTiny

    assert main(["convert", str(model), "--tiny-autoencoder", "--weights", str(taesd_folder)]) == 0
    check_tiny_autoencoder(model)
    config = json.loads((model / DECODER_DIR / "config.json").read_text())
    assert config["_sdedge_source"] == f"weights {taesd_folder}" and config["scaling_factor"] == 1.0
    latent = np.random.default_rng(0).standard_normal((1, 4, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = AutoencoderTiny.from_pretrained(taesd_folder).decode(torch.from_numpy(latent)).sample.numpy()
    expected = np.clip((expected[0].transpose(1, 2, 0) / 2 + 0.5) * 255, 0, 255)
    got = decode(model, latent)[0].astype(np.float32)
    assert got.shape == (64, 64, 3)
    assert np.abs(got - expected).max() <= 3  # fp16 weights and u8 rounding


def test_convert_then_tiny_autoencoder_in_one_run_needs_an_output_or_a_model(tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="not an OpenVINO model folder"):
        run_convert(str(tmp_path), None, tiny_autoencoder=True)
    with pytest.raises(ConvertError, match="give an output folder"):
        run_convert(str(tmp_path), None)


def test_without_the_convert_extra_the_error_says_how_to_install(model: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(TinyAutoencoderError, match=r"pip install 'sdedge\[convert\]'"):
        convert_tiny_autoencoder(model)


# -- download of a published OpenVINO export (no torch) ----------------------------------------
class _Hub(BaseHTTPRequestHandler):
    """The hub's resolve URLs, as huggingface_hub's hf_hub_download uses them (HEAD, then GET)."""

    protocol_version = "HTTP/1.1"
    files: dict[str, bytes] = {}
    repo = ""
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(False)

    def do_GET(self) -> None:
        self._serve(True)

    def _serve(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.seen.append(f"{self.command} {path}")
        prefix = f"/{self.repo}/resolve/"
        name = path[len(prefix):].split("/", 1)[1] if path.startswith(prefix) else None
        data = self.files.get(name or "")
        if data is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound" if name else "RepoNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("X-Repo-Commit", SHA)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


def published_files(decoder_input: str = "latent_sample") -> dict[str, bytes]:
    """A repo laid out like rupeshs/taesd-ov: vae_decoder/ and vae_encoder/ IR, no genai config."""
    files = {}
    for source, target in (("vae_decoder", DECODER_DIR), ("vae_encoder", ENCODER_DIR)):
        for name in ("openvino_model.xml", "openvino_model.bin"):
            files[f"{source}/{name}"] = (FIXTURE / target / name).read_bytes()
    if decoder_input != "latent_sample":
        files["vae_decoder/openvino_model.xml"] = files["vae_decoder/openvino_model.xml"].replace(
            b'names="latent_sample"', f'names="{decoder_input}"'.encode())
    return files


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Hub]]:
    handler = type("Hub", (_Hub,), {"files": published_files(), "repo": "rupeshs/taesd-ov", "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield handler
    server.shutdown()
    server.server_close()


def test_download_installs_a_published_export_the_fast_decoder_runs(model: Path, hub: type[_Hub]) -> None:
    assert main(["convert", str(model), "--tiny-autoencoder", "--from-ir"]) == 0
    assert any(line.startswith("GET /rupeshs/taesd-ov/resolve/") for line in hub.seen)
    for sub in (DECODER_DIR, ENCODER_DIR):
        assert (model / sub / "openvino_model.bin").read_bytes() == (FIXTURE / sub / "openvino_model.bin").read_bytes()
        config = json.loads((model / sub / "config.json").read_text())
        assert config["_sdedge_source"] == "OpenVINO IR rupeshs/taesd-ov" and len(config["block_out_channels"]) == 4
    assert not (model / ".tiny-autoencoder.partial").exists()
    latent = np.random.default_rng(1).standard_normal((1, 4, 8, 8)).astype(np.float32)
    assert decode(model, latent).shape == (1, 64, 64, 3)


def test_download_refuses_an_export_with_other_inputs_and_keeps_the_folder(model: Path, hub: type[_Hub]) -> None:
    hub.files = published_files(decoder_input="z")
    with pytest.raises(TinyAutoencoderError, match="input must be 'latent_sample'"):
        download_tiny_autoencoder(model)
    assert not (model / DECODER_DIR).exists() and not (model / ".tiny-autoencoder.partial").exists()


def test_download_of_a_missing_repo_names_it(model: Path, hub: type[_Hub], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", str(model), "--tiny-autoencoder", "--from-ir", "someone/nothing"]) == 1
    assert "someone/nothing" in capsys.readouterr().err
