#!/usr/bin/env python
"""Build random-weight models with the exact architectures the benchmarks measure.

Writes, in a cache outside the repository (work already done is skipped):

- ``sd15``: a seeded diffusers folder (fp32 safetensors) with SD 1.5's exact architecture and its
  int8 OpenVINO IR export, with a random TAESD-architecture tiny decoder (``vae_*_tiny/``) beside it;
- ``lora``: two random LoRAs shaped like ``latent-consistency/lcm-lora-sdv1-5`` (rank 64, alpha 8, on
  the UNet's attention projections, feed-forwards, resnet convs, shortcuts, down/upsamplers and time
  embeddings, kohya ``lora_unet_*`` keys, fp16) in ``loras/`` (two, to time a switch between them), and
  each without its 3x3-conv parts (``*-pointwise``), the part openvino-genai can load;
- ``sd-turbo``: SD-Turbo's architecture (SD 2.1: OpenCLIP ViT-H text tower, linear-projection UNet
  with 5-20-channel heads, 1024-wide cross attention), its int8 IR and tiny decoder.

Same layers, shapes and FLOPs as the real models, so timings are real; the images are noise.

    python scripts/make_full_model.py                  # everything
    python scripts/make_full_model.py --only sd15,lora
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
TURBO_DIFFUSERS = CACHE / "sd-turbo-random-diffusers"
TURBO_IR = CACHE / "sd-turbo-random-int8-ov"
LORA_DIR = CACHE / "loras"
LORA_NAMES = ("lcm-lora-sdv1-5-random", "lcm-lora-sdv1-5-random-b")
SEED = 0
# LCM-LoRA SD 1.5 (latent-consistency/lcm-lora-sdv1-5): its training script's target modules, rank, alpha
LORA_RANK, LORA_ALPHA = 64, 8
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1",
                "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj")
PARTS = ("sd15", "lora", "sd-turbo")
POINTWISE = "-pointwise"  # the same LoRA without its 3x3-conv parts: what openvino-genai can load

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


def build_unet(family: str = "sd15") -> Any:
    """SD 1.5's UNet2DConditionModel (860 M parameters), or SD 2.1's (SD-Turbo, 866 M)."""
    import diffusers

    d: Any = diffusers
    sd2 = {"attention_head_dim": (5, 10, 20, 20), "cross_attention_dim": 1024, "use_linear_projection": True}
    return d.UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        norm_num_groups=32,
        **(sd2 if family == "sd-turbo" else {"attention_head_dim": 8, "cross_attention_dim": 768}),
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


def build_text_encoder(tokenizer: Any, family: str = "sd15") -> Any:
    """CLIP ViT-L/14's text tower (hidden 768, 12 layers, 12 heads, MLP 3072), or SD 2.1's OpenCLIP ViT-H
    (hidden 1024, the 23 layers SD 2.x uses, 16 heads, MLP 4096, gelu)."""
    import transformers

    t: Any = transformers
    sd2 = family == "sd-turbo"
    return t.CLIPTextModel(
        t.CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=1024 if sd2 else 768,
            intermediate_size=4096 if sd2 else 3072,
            num_hidden_layers=23 if sd2 else 12,
            num_attention_heads=16 if sd2 else 12,
            max_position_embeddings=77,
            projection_dim=512 if sd2 else 768,
            hidden_act="gelu" if sd2 else "quick_gelu",
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def build_pipeline(workdir: Path, family: str = "sd15") -> Any:
    """Create the seeded fp32 StableDiffusionPipeline with SD 1.5's (or SD-Turbo's) exact layout."""
    import diffusers
    import torch

    tokenizer = build_tokenizer(workdir)
    torch.manual_seed(SEED)
    unet = build_unet(family)
    torch.manual_seed(SEED)
    vae = build_vae()
    torch.manual_seed(SEED)
    text_encoder = build_text_encoder(tokenizer, family)
    pipe = assemble_pipeline(unet, vae, text_encoder, tokenizer)
    if family == "sd-turbo":  # SD-Turbo's own schedule: Euler, trailing timesteps (one step starts at t=999)
        d: Any = diffusers
        pipe.scheduler = d.EulerDiscreteScheduler(
            num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
            timestep_spacing="trailing", steps_offset=1, prediction_type="epsilon")
    return pipe


def count_params(pipe: Any) -> dict[str, int]:
    """Parameter counts per component (a check that the architecture is SD 1.5's)."""
    return {
        name: sum(p.numel() for p in getattr(pipe, name).parameters())
        for name in ("unet", "text_encoder", "vae")
    }


def make_diffusers(target: Path, family: str = "sd15") -> None:
    """Build and save the diffusers folder into ``target`` (written beside it, then renamed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{family}-build-", dir=target.parent) as tmp:
        work = Path(tmp)
        pipe = build_pipeline(work, family)
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


def lora_modules(unet: Any) -> dict[str, Any]:
    """The UNet's Linear and Conv2d modules that LCM-LoRA adapts, by their diffusers names."""
    import torch

    return {name: module for name, module in unet.named_modules()
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))
            and any(name == t or name.endswith("." + t) for t in LORA_TARGETS)}


def write_random_lora(unet: Any, path: Path, seed: int, rank: int = LORA_RANK, alpha: float = LORA_ALPHA,
                      pointwise_only: bool = False) -> int:
    """A seeded random LoRA for ``unet`` in kohya's layout (what genai and A1111 read); returns its parameters.

    Linear: ``lora_down`` [rank, in], ``lora_up`` [out, rank]; Conv2d: ``lora_down`` [rank, in, kh, kw] (the
    layer's own kernel), ``lora_up`` [out, rank, 1, 1]; ``alpha`` scales the product by alpha / rank.
    ``pointwise_only`` leaves out the 3x3 convolutions: openvino-genai 2026.4 refuses a LoRA that has
    them ("LoRA adapter with not pointwise Convolutional kernel is not supported"), in every mode.
    """
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, Any] = {}
    for name, module in lora_modules(unet).items():
        if pointwise_only and isinstance(module, torch.nn.Conv2d) and tuple(module.kernel_size) != (1, 1):
            continue
        key = "lora_unet_" + name.replace(".", "_")
        if isinstance(module, torch.nn.Linear):
            down_shape, up_shape = (rank, module.in_features), (module.out_features, rank)
        else:
            down_shape = (rank, module.in_channels, *module.kernel_size)
            up_shape = (module.out_channels, rank, 1, 1)
        fan_in = float(torch.tensor(down_shape[1:]).prod())
        tensors[f"{key}.lora_down.weight"] = (torch.randn(down_shape, generator=generator) / fan_in**0.5).half()
        tensors[f"{key}.lora_up.weight"] = (torch.randn(up_shape, generator=generator) * 0.01).half()
        tensors[f"{key}.alpha"] = torch.tensor(float(alpha)).half()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"sdedge": f"random LCM-LoRA-shaped LoRA, rank {rank}, seed {seed}"})
    return sum(t.numel() for k, t in tensors.items() if not k.endswith(".alpha"))


def make_loras(folder: Path) -> None:
    """Two LCM-LoRA-shaped random LoRAs for SD 1.5 (shapes from a weightless UNet on the meta device)."""
    import torch

    with torch.device("meta"):
        unet = build_unet("sd15")
    for seed, name in enumerate(LORA_NAMES, start=1):
        for suffix, pointwise in (("", False), (POINTWISE, True)):
            path = folder / f"{name}{suffix}.safetensors"
            count = write_random_lora(unet, path, seed, pointwise_only=pointwise)
            print(f"wrote {path}: {count / 1e6:.1f} M parameters")


def make_tiny_decoder(ir: Path) -> None:
    """The random TAESD-architecture decoder and encoder beside the IR (scripts/make_tiny_vae.py)."""
    from make_tiny_vae import SEED as VAE_SEED

    from sdedge.tiny_autoencoder import convert_tiny_autoencoder

    if not (ir / "vae_decoder_tiny" / "openvino_model.xml").is_file():
        convert_tiny_autoencoder(ir, None, random_weights=True, tiny=False, seed=VAE_SEED)


def build_family(family: str, src: Path, out: Path, weight_format: str, force: bool) -> None:
    """The diffusers folder, its IR and the tiny decoder of one family (each skipped when complete)."""
    if force or not is_complete(src, _DIFFUSERS_MARKERS):
        t0 = time.perf_counter()
        make_diffusers(src, family)
        print(f"built {src} in {time.perf_counter() - t0:.0f} s", flush=True)
    else:
        print(f"cached {src}")
    if force or not is_complete(out, _IR_MARKERS):
        t0 = time.perf_counter()
        make_ir(src, out, weight_format)
        print(f"exported {out} in {time.perf_counter() - t0:.0f} s", flush=True)
    else:
        print(f"cached {out}")
    make_tiny_decoder(out)


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) the models, LoRAs and tiny decoders the benchmarks need; print the paths."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    parser.add_argument("--diffusers-dir", type=Path, default=DEFAULT_DIFFUSERS, help="SD 1.5 diffusers folder")
    parser.add_argument("--output", type=Path, default=DEFAULT_IR, help="SD 1.5 OpenVINO IR folder")
    parser.add_argument("--lora-dir", type=Path, default=LORA_DIR)
    parser.add_argument("--weight-format", default="int8")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if parts - set(PARTS):
        parser.error(f"unknown part(s) {', '.join(sorted(parts - set(PARTS)))}; choose from {', '.join(PARTS)}")
    if "sd15" in parts:
        build_family("sd15", args.diffusers_dir.expanduser().resolve(), args.output.expanduser().resolve(),
                     args.weight_format, args.force)
    lora_dir: Path = args.lora_dir.expanduser().resolve()
    if "lora" in parts:
        if args.force or not all((lora_dir / f"{n}{POINTWISE}.safetensors").is_file() for n in LORA_NAMES):
            make_loras(lora_dir)
        else:
            print(f"cached {lora_dir}")
    if "sd-turbo" in parts:
        build_family("sd-turbo", TURBO_DIFFUSERS, TURBO_IR, args.weight_format, args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
