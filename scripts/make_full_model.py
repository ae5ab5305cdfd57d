#!/usr/bin/env python
"""Build a random-weight model with the exact SD 1.5 architecture for the benchmark.

Writes a seeded diffusers folder (fp32 safetensors) and its int8 OpenVINO IR export, both in a
cache outside the repository. Same layers, shapes and FLOPs as ``stable-diffusion-v1-5``, so
timings are real; the images are noise. Work already done is skipped.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "scripts"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from make_tiny_model import BOS, EOS, add_sd15_scheduler_keys, assemble_pipeline, write_tokenizer_files  # noqa: E402

from sdedge.convert import convert_model  # noqa: E402

CACHE = Path.home() / ".cache" / "sdedge"
DEFAULT_DIFFUSERS = CACHE / "sd15-random-diffusers"
DEFAULT_IR = CACHE / "sd15-random-int8-ov"
SEED = 0

_DIFFUSERS_MARKERS = (
    "model_index.json",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/model.safetensors",
    "tokenizer/tokenizer_config.json",  # transformers 5 saves tokenizer.json, 4.x vocab.json too
)
_IR_MARKERS = (
    "model_index.json",
    "unet/openvino_model.xml",
    "text_encoder/openvino_model.xml",
    "vae_decoder/openvino_model.xml",
    "tokenizer/openvino_tokenizer.xml",
)


def is_complete(folder: Path, markers: tuple[str, ...]) -> bool:
    """Return True when every marker file exists under ``folder``."""
    return all((folder / m).is_file() for m in markers)


def build_tokenizer(workdir: Path) -> Any:
    """Return a byte-level CLIP tokenizer (the tiny fixture's, 77 positions)."""
    import transformers

    vocab_dir = workdir / "vocab"
    write_tokenizer_files(vocab_dir)
    tok: Any = transformers.CLIPTokenizer.from_pretrained(
        str(vocab_dir), bos_token=BOS, eos_token=EOS, unk_token=EOS, pad_token=EOS, model_max_length=77
    )
    return tok


def build_unet() -> Any:
    """SD 1.5's UNet2DConditionModel (860 M parameters)."""
    import diffusers

    d: Any = diffusers
    return d.UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        attention_head_dim=8,
        cross_attention_dim=768,
        norm_num_groups=32,
    )


def build_vae() -> Any:
    """SD 1.5's AutoencoderKL (latent 4, 8x downscale)."""
    import diffusers

    d: Any = diffusers
    return d.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=512,
        scaling_factor=0.18215,
    )


def build_text_encoder(tokenizer: Any) -> Any:
    """CLIP ViT-L/14's text tower: hidden 768, 12 layers, 12 heads, MLP 3072."""
    import transformers

    t: Any = transformers
    return t.CLIPTextModel(
        t.CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            projection_dim=768,
            hidden_act="quick_gelu",
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def build_pipeline(workdir: Path) -> Any:
    """Create the seeded fp32 StableDiffusionPipeline with SD 1.5's exact layout."""
    import torch

    tokenizer = build_tokenizer(workdir)
    torch.manual_seed(SEED)
    unet = build_unet()
    torch.manual_seed(SEED)
    vae = build_vae()
    torch.manual_seed(SEED)
    text_encoder = build_text_encoder(tokenizer)
    return assemble_pipeline(unet, vae, text_encoder, tokenizer)


def count_params(pipe: Any) -> dict[str, int]:
    """Parameter counts per component (a check that the architecture is SD 1.5's)."""
    return {
        name: sum(p.numel() for p in getattr(pipe, name).parameters())
        for name in ("unet", "text_encoder", "vae")
    }


def make_diffusers(target: Path) -> None:
    """Build and save the diffusers folder into ``target`` (written beside it, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sd15-build-", dir=target.parent) as tmp:
        work = Path(tmp)
        pipe = build_pipeline(work)
        print("parameters:", count_params(pipe), flush=True)
        staged = work / "diffusers"
        pipe.save_pretrained(str(staged), safe_serialization=True)
        del pipe
        gc.collect()
        add_sd15_scheduler_keys(staged)
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)


def make_ir(source: Path, target: Path, weight_format: str) -> None:
    """Export ``source`` through sdedge's converter into ``target`` (staged, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.parent / (target.name + ".partial")
    if staged.exists():
        shutil.rmtree(staged)
    convert_model(source, staged, weight_format=weight_format)
    add_sd15_scheduler_keys(staged)
    if target.exists():
        shutil.rmtree(target)
    staged.rename(target)


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) the diffusers folder and the int8 IR; print both paths."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--diffusers-dir", type=Path, default=DEFAULT_DIFFUSERS)
    parser.add_argument("--output", type=Path, default=DEFAULT_IR, help="OpenVINO IR folder")
    parser.add_argument("--weight-format", default="int8")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    args = parser.parse_args(argv)
    src: Path = args.diffusers_dir.expanduser().resolve()
    out: Path = args.output.expanduser().resolve()

    if args.force or not is_complete(src, _DIFFUSERS_MARKERS):
        t0 = time.perf_counter()
        make_diffusers(src)
        print(f"built {src} in {time.perf_counter() - t0:.0f} s", flush=True)
    else:
        print(f"cached {src}")
    if args.force or not is_complete(out, _IR_MARKERS):
        t0 = time.perf_counter()
        make_ir(src, out, args.weight_format)
        print(f"exported {out} in {time.perf_counter() - t0:.0f} s", flush=True)
    else:
        print(f"cached {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
