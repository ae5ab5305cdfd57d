#!/usr/bin/env python
"""Build tiny random-weight SDXL, SD3 and FLUX.1 test fixtures as int8 OpenVINO IR.

Each fixture has its family's real *architecture* (the diffusers pipeline class, text encoders,
denoiser, VAE latent layout and scheduler of the published models) with tiny widths, seeded random
weights and a byte-level tokenizer, exported with optimum-intel like any user model. They produce
noise-like images; they exist so every family path runs through openvino-genai in the tests.

    python scripts/make_tiny_families.py --family sdxl   # tests/fixtures/tiny-sdxl-int8-ov
    python scripts/make_tiny_families.py --family sd3    # tests/fixtures/tiny-sd3-int8-ov
    python scripts/make_tiny_families.py --family flux   # tests/fixtures/tiny-flux-int8-ov
    python scripts/make_tiny_families.py --family all

Needs the convert extra (torch, diffusers, transformers, optimum-intel). The SD 1.5 fixture stays
with scripts/make_tiny_model.py, whose tokenizer and clean-up helpers this script shares.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "scripts"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from make_tiny_model import BOS, EOS, SEED, byte_symbols, strip_temp_paths, write_tokenizer_files  # noqa: E402

from sdedge.convert import ConvertError, ensure_tokenizer_ir  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
CLIP_POSITIONS = 77
T5_PAD, T5_EOS, T5_UNK = "<pad>", "</s>", "<unk>"


def _libs() -> tuple[Any, Any, Any]:
    """diffusers, transformers and torch, typed loosely (their annotations vary between releases)."""
    import diffusers
    import torch
    import transformers

    return diffusers, transformers, torch


def clip_tokenizer(workdir: Path, name: str) -> Any:
    """The SD 1.5 fixture's byte-level CLIP tokenizer (no merges), 77 positions."""
    _, transformers, _ = _libs()
    vocab_dir = workdir / name
    write_tokenizer_files(vocab_dir)
    return transformers.CLIPTokenizer.from_pretrained(
        str(vocab_dir), bos_token=BOS, eos_token=EOS, unk_token=EOS, pad_token=EOS, model_max_length=CLIP_POSITIONS
    )


def clip_text_model(tokenizer: Any, with_projection: bool, hidden: int = 32, projection: int = 32) -> Any:
    """A 2-layer CLIP text tower (CLIPTextModel, or CLIPTextModelWithProjection as SDXL/SD3 use)."""
    _, transformers, torch = _libs()
    config = transformers.CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_POSITIONS,
        projection_dim=projection,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(SEED)
    cls = transformers.CLIPTextModelWithProjection if with_projection else transformers.CLIPTextModel
    return cls(config)


def t5_tokenizer(workdir: Path) -> Any:
    """A Unigram (SentencePiece-style) T5 tokenizer over single characters, built without the hub."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    _, transformers, _ = _libs()
    # id 0 = pad, 1 = eos, 2 = unk as in T5; then the Metaspace marker and the byte-level symbols
    pieces = [(T5_PAD, 0.0), (T5_EOS, 0.0), (T5_UNK, 0.0), ("\u2581", -1.0)]
    pieces += [(s, -2.0) for s in byte_symbols() if s != "\u2581"]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single=f"$A {T5_EOS}", special_tokens=[(T5_EOS, 1)])
    folder = workdir / "t5-tokenizer"
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return transformers.T5TokenizerFast(
        tokenizer_file=str(folder / "tokenizer.json"),
        eos_token=T5_EOS,
        unk_token=T5_UNK,
        pad_token=T5_PAD,
        extra_ids=0,
        model_max_length=512,
    )


def t5_encoder(tokenizer: Any, d_model: int = 32) -> Any:
    """A 1-layer T5 encoder (FLUX.1's text_encoder_2 architecture, tiny)."""
    _, transformers, torch = _libs()
    config = transformers.T5Config(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=8,
        d_ff=d_model * 2,
        num_layers=1,
        num_heads=4,
        feed_forward_proj="gated-gelu",  # T5 v1.1, as FLUX.1 and SD3 use
        is_encoder_decoder=False,
        use_cache=False,
        pad_token_id=0,
        eos_token_id=1,
    )
    torch.manual_seed(SEED)
    return transformers.T5EncoderModel(config)


def vae(latent_channels: int, scaling_factor: float, shift_factor: float | None, quant_conv: bool) -> Any:
    """A tiny AutoencoderKL with the 8x downscale (4 blocks) of every family here."""
    diffusers, _, torch = _libs()
    torch.manual_seed(SEED)
    return diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=quant_conv,
        use_post_quant_conv=quant_conv,
    )


def build_sdxl(workdir: Path) -> Any:
    """StableDiffusionXLPipeline: two CLIP encoders, a text_time-conditioned UNet, SDXL's VAE scale."""
    diffusers, _, torch = _libs()
    tokenizer, tokenizer_2 = clip_tokenizer(workdir, "tok1"), clip_tokenizer(workdir, "tok2")
    text_encoder = clip_text_model(tokenizer, with_projection=False)
    text_encoder_2 = clip_text_model(tokenizer_2, with_projection=True)
    torch.manual_seed(SEED)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=32 + 6 * 8,  # pooled text_encoder_2 + 6 time ids
        cross_attention_dim=32 + 32,  # both encoders' hidden states, concatenated
        norm_num_groups=32,
    )
    scheduler = diffusers.EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        prediction_type="epsilon",
        timestep_spacing="leading",
        steps_offset=1,
        use_karras_sigmas=False,
    )
    return diffusers.StableDiffusionXLPipeline(
        vae=vae(4, 0.13025, None, quant_conv=True),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        force_zeros_for_empty_prompt=True,
    )


def build_sd3(workdir: Path) -> Any:
    """StableDiffusion3Pipeline: two projected CLIP encoders + T5, MMDiT transformer, 16-channel VAE.

    The T5 is tiny but present: diffusers cannot reload a folder whose text_encoder_3 is null, so the
    T5-free variant genai also runs is made from this export (tests null it in model_index.json).
    """
    diffusers, _, torch = _libs()
    tokenizer, tokenizer_2 = clip_tokenizer(workdir, "tok1"), clip_tokenizer(workdir, "tok2")
    tokenizer_3 = t5_tokenizer(workdir)
    text_encoder = clip_text_model(tokenizer, with_projection=True)
    text_encoder_2 = clip_text_model(tokenizer_2, with_projection=True)
    text_encoder_3 = t5_encoder(tokenizer_3, d_model=64)
    torch.manual_seed(SEED)
    transformer = diffusers.SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=16,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        joint_attention_dim=64,  # T5 d_model; the two CLIP hidden states (32 + 32) are padded to it
        caption_projection_dim=32,
        pooled_projection_dim=64,  # the two pooled CLIP outputs concatenated
        out_channels=16,
        pos_embed_max_size=32,
    )
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    return diffusers.StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=scheduler,
        vae=vae(16, 1.5305, 0.0609, quant_conv=False),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
    )


def build_flux(workdir: Path) -> Any:
    """FluxPipeline in the FLUX.1-schnell layout: CLIP + T5, no guidance embedding, packed 16-ch latents."""
    diffusers, _, torch = _libs()
    tokenizer = clip_tokenizer(workdir, "tok1")
    tokenizer_2 = t5_tokenizer(workdir)
    text_encoder = clip_text_model(tokenizer, with_projection=False)
    text_encoder_2 = t5_encoder(tokenizer_2)
    torch.manual_seed(SEED)
    transformer = diffusers.FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,  # 16 latent channels x 2x2 packing
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # T5 d_model
        pooled_projection_dim=32,  # CLIP pooled output
        guidance_embeds=False,  # schnell; FLUX.1-dev sets True (distilled guidance)
        axes_dims_rope=(4, 6, 6),
    )
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=1.0,
        use_dynamic_shifting=False,  # schnell; dev uses dynamic shifting (base 0.5, max 1.15)
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return diffusers.FluxPipeline(
        scheduler=scheduler,
        vae=vae(16, 0.3611, 0.1159, quant_conv=False),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


FAMILIES: dict[str, tuple[str, Callable[[Path], Any], str]] = {
    "sdxl": ("tiny-sdxl-int8-ov", build_sdxl, "Stable Diffusion XL (StableDiffusionXLPipeline)"),
    "sd3": ("tiny-sd3-int8-ov", build_sd3, "Stable Diffusion 3 (StableDiffusion3Pipeline)"),
    "flux": ("tiny-flux-int8-ov", build_flux, "FLUX.1-schnell (FluxPipeline)"),
}


def export_ir(source: Path, output: Path, weight_format: str = "int8") -> None:
    """Run optimum-cli's OpenVINO export on a diffusers folder, as sdedge.convert does for SD 1.5."""
    cmd = [
        sys.executable, "-m", "optimum.commands.optimum_cli", "export", "openvino",
        "--model", str(source), "--task", "text-to-image", "--library", "diffusers",
        "--weight-format", weight_format, str(output),
    ]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise ConvertError(f"optimum-cli export failed ({proc.returncode}):\n{tail}")
    ensure_tokenizer_ir(output)


def describe(pipe: Any) -> dict[str, Any]:
    """Parameter counts per torch component (shown in the README)."""
    counts = {}
    for name in ("unet", "transformer", "text_encoder", "text_encoder_2", "text_encoder_3", "vae"):
        module = getattr(pipe, name, None)
        if module is not None:
            counts[name] = sum(p.numel() for p in module.parameters())
    return counts


def write_readme(output: Path, family: str, title: str, counts: dict[str, Any]) -> None:
    """Describe the fixture and its rebuild command."""
    size = sum(p.stat().st_size for p in output.rglob("*") if p.is_file())
    config = json.loads((output / "model_index.json").read_text(encoding="utf-8"))
    parts = ", ".join(f"{k}: {v[1]}" for k, v in sorted(config.items()) if isinstance(v, list) and v[1])
    params = ", ".join(f"{k} {v:,}" for k, v in counts.items())
    (output / "README.md").write_text(
        f"""# {output.name}

Test fixture: a **random-weight** {title} with the family's architecture (pipeline class, text
encoders, denoiser, VAE latent layout, scheduler) but tiny widths, exported to OpenVINO IR with int8
weight compression by optimum-intel. It produces noise-like images; it only exists so tests run the
real openvino-genai pipelines of this family quickly, at 64x64.

- components: {parts}
- parameters: {params}
- CLIP tokenizers: byte-level BPE with no merges (as tests/fixtures/tiny-sd-int8-ov)
- weights initialised with `torch.manual_seed({SEED})` before each component, so a rebuild with the
  same library versions gives the same weights
- size {size / 1e6:.1f} MB

Rebuild (needs the convert extra: `pip install -e ".[convert]"`):

```
python scripts/make_tiny_families.py --family {family}
```
""",
        encoding="utf-8",
    )


def build(family: str, output: Path) -> Path:
    """Build one family's diffusers pipeline, export it and write its README."""
    _, builder, title = FAMILIES[family]
    if output.exists():
        shutil.rmtree(output)
    with tempfile.TemporaryDirectory(prefix=f"tiny-{family}-") as tmp:
        workdir = Path(tmp)
        pipe = builder(workdir)
        counts = describe(pipe)
        source = workdir / "diffusers"
        pipe.save_pretrained(str(source), safe_serialization=True)
        export_ir(source, output)
        strip_temp_paths(output, source)
    write_readme(output, family, title, counts)
    return output


def main(argv: list[str] | None = None) -> int:
    """Build the requested fixtures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=[*FAMILIES, "all"], default="all")
    parser.add_argument("--output", type=Path, help="fixture folder (one family only; default tests/fixtures/...)")
    args = parser.parse_args(argv)
    families = list(FAMILIES) if args.family == "all" else [args.family]
    if args.output and len(families) > 1:
        parser.error("--output needs a single --family")
    for family in families:
        output = (args.output or FIXTURES / FAMILIES[family][0]).resolve()
        started = time.perf_counter()
        build(family, output)
        print(f"wrote {output} in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
