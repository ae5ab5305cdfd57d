"""Export diffusers Stable Diffusion models to OpenVINO IR with weight compression."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # hybrid_int8 imports this module
    from sdedge.hybrid_int8 import Calibration

__all__ = ["WEIGHT_FORMATS", "ConvertError", "convert_model", "ensure_tokenizer_ir", "run_convert"]

WEIGHT_FORMATS: tuple[str, ...] = ("int8", "int4", "fp16", "fp32")
"""Weight formats accepted by :func:`convert_model`."""

_INSTALL_HINT = "the convert extra is not installed: pip install 'sdedge[convert]'"
_TOKENIZER_IR = "openvino_tokenizer.xml"
_DETOKENIZER_IR = "openvino_detokenizer.xml"


class ConvertError(RuntimeError):
    """Raised when a model cannot be exported to OpenVINO IR."""


def _require(module: str) -> None:
    """Raise ConvertError with an install hint if ``module`` is not importable."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConvertError(f"{_INSTALL_HINT} (missing module {module!r})")


def _check_output(output: Path) -> None:
    """Raise ConvertError unless ``output`` looks like an exported SD pipeline."""
    missing = [
        name
        for name in (
            "model_index.json",
            "scheduler/scheduler_config.json",
            "text_encoder/openvino_model.xml",
            "unet/openvino_model.xml",
            "vae_decoder/openvino_model.xml",
            "vae_encoder/openvino_model.xml",
            f"tokenizer/{_TOKENIZER_IR}",
            f"tokenizer/{_DETOKENIZER_IR}",
        )
        if not (output / name).is_file()
    ]
    if missing:
        raise ConvertError(f"export to {output} is incomplete, missing: {', '.join(missing)}")


def ensure_tokenizer_ir(output: Path) -> None:
    """Create tokenizer/openvino_(de)tokenizer.xml from the HF tokenizer if absent."""
    tokenizer_dir = Path(output) / "tokenizer"
    if (tokenizer_dir / _TOKENIZER_IR).is_file() and (tokenizer_dir / _DETOKENIZER_IR).is_file():
        return
    _require("openvino_tokenizers")
    _require("transformers")
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoTokenizer

    if not tokenizer_dir.is_dir():
        raise ConvertError(f"no tokenizer folder in {output}; cannot build the tokenizer IR")
    hf_tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ov_tokenizer, ov_detokenizer = convert_tokenizer(hf_tokenizer, with_detokenizer=True)
    ov.save_model(ov_tokenizer, str(tokenizer_dir / _TOKENIZER_IR))
    ov.save_model(ov_detokenizer, str(tokenizer_dir / _DETOKENIZER_IR))


def convert_model(source: str | Path, output: Path, weight_format: str = "int8") -> Path:
    """Export a diffusers SD folder or hub id to OpenVINO IR in ``output`` and return it."""
    if weight_format not in WEIGHT_FORMATS:
        raise ValueError(f"weight_format must be one of {', '.join(WEIGHT_FORMATS)}, got {weight_format!r}")
    for module in ("optimum.intel", "optimum.commands.optimum_cli", "diffusers", "torch"):
        _require(module)
    if weight_format in ("int8", "int4"):
        _require("nncf")

    src = str(source)
    if Path(src).exists():
        src = str(Path(src).resolve())
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)

    # optimum-cli runs main_export plus the weight-compression pass exactly as
    # users would; a subprocess also frees torch's memory once the export ends.
    cmd = [
        sys.executable,
        "-m",
        "optimum.commands.optimum_cli",
        "export",
        "openvino",
        "--model",
        src,
        "--task",
        "text-to-image",
        "--library",
        "diffusers",
        "--weight-format",
        weight_format,
        str(output),
    ]
    env = dict(os.environ)
    if Path(src).exists():
        env.setdefault("HF_HUB_OFFLINE", "1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
        raise ConvertError(f"optimum-cli export failed with exit code {proc.returncode}:\n{tail}")

    ensure_tokenizer_ir(output)
    _check_output(output)
    return output


def run_convert(source: str, output: Path | None, weight_format: str = "int8", *, tiny_autoencoder: bool = False,
                tiny_weights: str | None = None, tiny_ir: str | None = None, fuse: Sequence[str] = (),
                lcm: bool | None = None, lora_dir: Path | None = None, hybrid: Calibration | None = None) -> str:
    """What `sdedge convert` does; returns the message for the user (raises RuntimeError subclasses).

    ``sdedge convert SRC OUT`` exports a model; ``--tiny-autoencoder`` then adds TAESD/TAESDXL to OUT, or to
    SRC when no OUT is given (SRC is then an OpenVINO model folder). ``tiny_ir`` ("auto" or a hub id)
    downloads a published OpenVINO export instead of converting, which needs no torch. ``fuse``
    (``NAME_OR_PATH[:WEIGHT]`` each) copies the OpenVINO model folder SRC to OUT with those LoRAs fused
    into its weights (no torch either); ``lcm`` None switches to LCM for an LCM-LoRA by itself. ``hybrid``
    (a ``hybrid_int8.Calibration``) copies the OpenVINO model folder SRC to OUT with int8 convolutions.
    """
    from sdedge import tiny_autoencoder as tiny

    if hybrid is not None and (output is None or fuse):
        raise ConvertError("--hybrid-int8 writes a new model folder from an OpenVINO one: give OUTPUT, and fuse "
                           "LoRAs first (--fuse-lora NAME SRC FUSED), then quantize the fused folder")
    if output is None and not tiny_autoencoder:
        raise ConvertError("give an output folder (or --tiny-autoencoder to add TAESD to an OpenVINO model folder)")
    if fuse and output is None:
        raise ConvertError("--fuse-lora writes a new model folder: give OUTPUT after the model folder")
    lines = []
    if hybrid is not None and output is not None:
        from sdedge import hybrid_int8

        done = hybrid_int8.quantize_hybrid_int8(Path(source).expanduser(), output, hybrid)
        target = done.output
        lines.append(f"{done.convolutions} convolutions of the UNet compute in int8 ({done.matmuls_kept} MatMuls keep "
                     f"weight-only int8), calibrated on {hybrid.samples} samples in {done.seconds:.0f} s; written to "
                     f"{target}; use it with STABLE_DIFFUSION_REPO_ID={target}")
    elif fuse and output is not None:
        from sdedge import lora_fuse

        root = Path(lora_dir) if lora_dir is not None else Path.cwd()
        report = lora_fuse.fuse_loras(Path(source).expanduser(), output,
                                      [lora_fuse.parse_spec(spec, root) for spec in fuse], lcm=lcm)
        target = report.output
        names = ", ".join(f"{item['name']}:{item['weight']:g}" for item in report.record["loras"])
        lines.append(f"fused {names} into {report.layers} layers ({report.conv3x3} 3x3 convolutions) of "
                     f"{', '.join(report.parts) or 'no part (all weights 0)'}"
                     f"{'; LCM model (4 steps, guidance 1)' if report.lcm else ''}; written to {target}; use it "
                     f"with STABLE_DIFFUSION_REPO_ID={target}")
    elif output is not None:
        target = convert_model(source, output, weight_format=weight_format)
        lines.append(f"converted model written to {target}; use it with STABLE_DIFFUSION_REPO_ID={target}")
    else:
        target = Path(source).expanduser()
        if not (target / "model_index.json").is_file():
            raise ConvertError(f"{source} is not an OpenVINO model folder (no model_index.json)")
    if tiny_autoencoder:
        if tiny_ir is not None:
            tiny.download_tiny_autoencoder(target, None if tiny_ir == "auto" else tiny_ir)
        else:
            tiny.convert_tiny_autoencoder(target, tiny_weights)
        lines.append(f"tiny autoencoder written to {target / tiny.DECODER_DIR} and {target / tiny.ENCODER_DIR}; "
                     "use it with FAST_DECODER=true")
    return "\n".join(lines)
