"""The tiny autoencoder (TAESD, TAESDXL) beside a model folder, as the IR sdedge's fast decoder reads.

Two ways to get it into ``MODEL/vae_decoder_tiny/`` and ``MODEL/vae_encoder_tiny/``:

- ``convert_tiny_autoencoder``: export diffusers ``AutoencoderTiny`` weights (``madebyollin/taesd`` for
  SD 1.x/2.x, ``madebyollin/taesdxl`` for SDXL, or a local folder) with the ``convert`` extra (torch,
  diffusers); ``sdedge convert MODEL --tiny-autoencoder`` runs it;
- ``download_tiny_autoencoder``: fetch a published OpenVINO export (FastSD CPU's ``rupeshs/taesd-ov``,
  ``rupeshs/taesdxl-openvino``: ``vae_decoder/openvino_model.xml|bin`` and ``vae_encoder/...``, inputs
  ``latent_sample``/``sample`` as optimum-intel names them) with huggingface-hub only, check the IR's
  inputs and outputs, and write the ``config.json`` openvino-genai's AutoencoderKL needs.

Conventions (openvino-genai's AutoencoderKL): the decoder maps ``latent_sample`` [N,4,h,w], in the UNet's
scaled latent space, to ``sample`` [N,3,8h,8w] in [-1, 1]; the encoder maps ``sample`` in [-1, 1] to
``latent_sample``. TAESD works in the scaled space itself, so the config says ``scaling_factor: 1.0`` and
``shift_factor: 0.0``; ``block_out_channels`` has 4 entries, so genai's VAE scale factor is 8.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

__all__ = ["DECODER_DIR", "ENCODER_DIR", "TAESD_WEIGHTS", "PUBLISHED_IR", "TINY_CONFIG", "TinyAutoencoderError",
           "model_family", "default_weights", "genai_config", "convert_tiny_autoencoder", "download_tiny_autoencoder",
           "check_tiny_autoencoder"]

DECODER_DIR, ENCODER_DIR = "vae_decoder_tiny", "vae_encoder_tiny"
TAESD_WEIGHTS = {"sd": "madebyollin/taesd", "sdxl": "madebyollin/taesdxl"}
PUBLISHED_IR = {"sd": "rupeshs/taesd-ov", "sdxl": "rupeshs/taesdxl-openvino"}
# TAESD's layout (4 stages, 8x scale) with tiny widths and one block per stage: tens of KB of IR
TINY_CONFIG: dict[str, Any] = {
    "encoder_block_out_channels": (8, 8, 8, 8),
    "decoder_block_out_channels": (8, 8, 8, 8),
    "num_encoder_blocks": (1, 1, 1, 1),
    "num_decoder_blocks": (1, 1, 1, 1),
}
# diffusers AutoencoderTiny's defaults: what madebyollin/taesd and taesdxl hold
TAESD_CONFIG: dict[str, Any] = {
    "act_fn": "relu", "decoder_block_out_channels": [64, 64, 64, 64], "encoder_block_out_channels": [64, 64, 64, 64],
    "force_upcast": False, "in_channels": 3, "latent_channels": 4, "latent_magnitude": 3, "latent_shift": 0.5,
    "num_decoder_blocks": [3, 3, 3, 1], "num_encoder_blocks": [1, 3, 3, 3], "out_channels": 3,
    "scaling_factor": 1.0, "shift_factor": 0.0, "upsample_fn": "nearest", "upsampling_scaling_factor": 2,
}
EXAMPLE_SIZE = 64  # pixels; the exported shapes are dynamic
_INSTALL_HINT = "the convert extra is not installed: pip install 'sdedge[convert]'"
_IR_FILES = ("openvino_model.xml", "openvino_model.bin")


class TinyAutoencoderError(RuntimeError):
    """The tiny autoencoder cannot be converted, downloaded or used for this model."""


def model_family(model_dir: Path) -> str:
    """"sd" or "sdxl": the latent space of the model folder (TAESD exists for 4-channel latents only)."""
    index = Path(model_dir) / "model_index.json"
    try:
        cls = str(json.loads(index.read_text(encoding="utf-8")).get("_class_name", ""))
    except (OSError, ValueError) as exc:
        raise TinyAutoencoderError(f"{model_dir} is not a model folder (no readable model_index.json)") from exc
    if cls.startswith(("StableDiffusionXL", "StableDiffusionXLInpaint")):
        return "sdxl"
    if cls.startswith(("StableDiffusion", "LatentConsistency")) and not cls.startswith("StableDiffusion3"):
        return "sd"
    raise TinyAutoencoderError(f"no tiny autoencoder for {cls or 'this model'}: TAESD/TAESDXL fit SD 1.x/2.x and SDXL")


def default_weights(model_dir: Path) -> str:
    """madebyollin/taesd for SD 1.x/2.x (and LCM), madebyollin/taesdxl for SDXL."""
    return TAESD_WEIGHTS[model_family(model_dir)]


def genai_config(config: dict[str, Any], source: str) -> dict[str, Any]:
    """AutoencoderTiny's diffusers config plus the keys genai's AutoencoderKL::Config reads."""
    out: dict[str, Any] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()
           if k not in ("_name_or_path", "_use_default_values", "_diffusers_version")}  # vary between runs
    out["_class_name"] = "AutoencoderTiny"
    out["block_out_channels"] = list(out.get("decoder_block_out_channels", [64] * 4))  # len 4 -> scale factor 8
    out["scaling_factor"] = float(out.get("scaling_factor", 1.0) or 1.0)  # TAESD works in the UNet's space
    out["shift_factor"] = float(out.get("shift_factor", 0.0) or 0.0)
    out["_sdedge_source"] = source
    return out


def _require(*modules: str) -> None:
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise TinyAutoencoderError(f"{_INSTALL_HINT} (missing module {module!r})")


def _check_weights_fit(weights: str, family: str) -> None:
    """Refuse the well-known pairing mistakes: TAESD and TAESDXL latent spaces differ."""
    name = weights.rstrip("/").lower()
    if name.endswith("taesdxl") and family != "sdxl":
        raise TinyAutoencoderError(f"{weights} is for SDXL; this model needs {TAESD_WEIGHTS[family]}")
    if name.endswith("taesd") and family == "sdxl":
        raise TinyAutoencoderError(f"{weights} is for SD 1.x/2.x; this SDXL model needs {TAESD_WEIGHTS['sdxl']}")


def build_autoencoder(weights: str | None, *, tiny: bool = False, seed: int = 0) -> Any:
    """The AutoencoderTiny to export: real weights (folder or hub id), or seeded random ones."""
    import torch
    from diffusers import AutoencoderTiny

    if weights is not None:
        try:
            vae = AutoencoderTiny.from_pretrained(weights, torch_dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise TinyAutoencoderError(f"cannot load AutoencoderTiny weights from {weights}: {exc}") from exc
    else:
        torch.manual_seed(seed)
        vae = AutoencoderTiny(**(TINY_CONFIG if tiny else {}))
    if vae.config.latent_channels != 4:
        raise TinyAutoencoderError(f"expected a 4-channel latent space, {weights} has {vae.config.latent_channels}")
    return vae.float().eval()


def export(vae: Any, folder: Path, source: str) -> None:
    """Write folder/vae_decoder_tiny and folder/vae_encoder_tiny (replacing them) from an AutoencoderTiny."""
    import openvino as ov
    import torch

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vae = vae

        def forward(self, latent_sample: torch.Tensor) -> torch.Tensor:
            return self.vae.decode(latent_sample, return_dict=False)[0]

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.vae = vae

        def forward(self, sample: torch.Tensor) -> torch.Tensor:
            return self.vae.encode(sample, return_dict=False)[0]

    latent = EXAMPLE_SIZE // 8
    parts: list[tuple[str, Any, Any, tuple[str, list[int]], str]] = [
        (DECODER_DIR, Decoder(), torch.zeros(1, 4, latent, latent), ("latent_sample", [-1, 4, -1, -1]), "sample"),
        (ENCODER_DIR, Encoder(), torch.zeros(1, 3, EXAMPLE_SIZE, EXAMPLE_SIZE), ("sample", [-1, 3, -1, -1]),
         "latent_sample"),
    ]
    config = genai_config(dict(vae.config), source)
    for name, module, example, (input_name, shape), output_name in parts:
        with torch.no_grad():
            model = ov.convert_model(module.eval(), example_input=example, input=[(input_name, ov.PartialShape(shape))])
        model.inputs[0].get_tensor().set_names({input_name})
        model.outputs[0].get_tensor().set_names({output_name})
        out = folder / name
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        # fp16 weights: TAESD is published in fp16; the CPU plugin folds the conversion at compile time
        ov.save_model(model, str(out / "openvino_model.xml"), compress_to_fp16=True)
        (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def convert_tiny_autoencoder(model_dir: Path, weights: str | None = None, *, random_weights: bool = False,
                             tiny: bool = False, seed: int = 0) -> Path:
    """Export TAESD/TAESDXL (default for the model's family) into model_dir; return model_dir."""
    folder = Path(model_dir).expanduser().resolve()
    family = model_family(folder)
    _require("torch", "diffusers", "openvino")
    if random_weights:
        source = f"random weights, torch.manual_seed({seed}), {'tiny widths' if tiny else 'TAESD architecture'}"
        vae = build_autoencoder(None, tiny=tiny, seed=seed)
    else:
        weights = weights or TAESD_WEIGHTS[family]
        _check_weights_fit(weights, family)
        source, vae = f"weights {weights}", build_autoencoder(weights)
    export(vae, folder, source)
    check_tiny_autoencoder(folder)
    return folder


def check_tiny_autoencoder(model_dir: Path) -> None:
    """Raise TinyAutoencoderError unless both tiny IRs have the inputs and outputs genai expects."""
    import openvino as ov

    core, folder = ov.Core(), Path(model_dir)
    expected = {DECODER_DIR: ("latent_sample", 4, {"sample"}, 3), ENCODER_DIR: ("sample", 3, {"latent_sample"}, 4)}
    for sub, (input_name, in_channels, output_names, out_channels) in expected.items():
        xml = folder / sub / "openvino_model.xml"
        if not xml.is_file() or not (folder / sub / "config.json").is_file():
            raise TinyAutoencoderError(f"{folder / sub} lacks openvino_model.xml or config.json")
        try:
            model = core.read_model(str(xml))
        except RuntimeError as exc:
            raise TinyAutoencoderError(f"{xml} is not a readable OpenVINO IR: {exc}") from exc
        inputs, outputs = model.inputs, model.outputs
        if len(inputs) != 1 or len(outputs) != 1:
            raise TinyAutoencoderError(f"{xml}: expected one input and one output")
        in_shape, out_shape = inputs[0].get_partial_shape(), outputs[0].get_partial_shape()
        if input_name not in inputs[0].get_names() or in_shape.rank.get_length() != 4 or \
                in_shape[1].get_length() != in_channels:
            raise TinyAutoencoderError(f"{xml}: input must be {input_name!r} [N,{in_channels},H,W], got "
                                       f"{sorted(inputs[0].get_names())} {in_shape}")
        if not output_names & outputs[0].get_names() or out_shape.rank.get_length() != 4 or \
                out_shape[1].get_length() != out_channels:
            raise TinyAutoencoderError(f"{xml}: output must be {sorted(output_names)} [N,{out_channels},H,W], got "
                                       f"{sorted(outputs[0].get_names())} {out_shape}")


def download_tiny_autoencoder(model_dir: Path, repo_id: str | None = None, *, revision: str | None = None,
                              token: str | None = None) -> Path:
    """Fetch a published OpenVINO TAESD export into model_dir's tiny folders (huggingface-hub, no torch)."""
    import os

    from huggingface_hub import hf_hub_download

    folder = Path(model_dir).expanduser().resolve()
    family = model_family(folder)
    repo = repo_id or PUBLISHED_IR[family]
    staging = folder / ".tiny-autoencoder.partial"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for source, target in (("vae_decoder", DECODER_DIR), ("vae_encoder", ENCODER_DIR)):
            for name in _IR_FILES:
                path = hf_hub_download(repo, f"{source}/{name}", revision=revision, token=token,
                                       endpoint=os.environ.get("HF_ENDPOINT") or None,
                                       cache_dir=staging / ".cache")
                (staging / target).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, staging / target / name)
            config = genai_config(TAESD_CONFIG, f"OpenVINO IR {repo}{'@' + revision if revision else ''}")
            (staging / target / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n",
                                                          encoding="utf-8")
        check_tiny_autoencoder(staging)
        for target in (DECODER_DIR, ENCODER_DIR):
            if (folder / target).exists():
                shutil.rmtree(folder / target)
            (staging / target).rename(folder / target)
    except TinyAutoencoderError:
        raise
    except Exception as exc:  # huggingface_hub's and the network's errors, reported with the repo
        raise TinyAutoencoderError(f"cannot download the tiny autoencoder from {repo}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
