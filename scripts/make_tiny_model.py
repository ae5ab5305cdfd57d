#!/usr/bin/env python
"""Build the tiny random-weight SD 1.5-architecture test fixture as int8 OpenVINO IR."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sdedge.convert import convert_model  # noqa: E402

DEFAULT_OUTPUT = ROOT / "tests" / "fixtures" / "tiny-sd-int8-ov"
SEED = 0
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
COMMAND = "python scripts/make_tiny_model.py --output tests/fixtures/tiny-sd-int8-ov"


def byte_symbols() -> list[str]:
    """Return the 256 printable byte-level BPE symbols in GPT-2/CLIP order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tokenizer_files(folder: Path) -> int:
    """Write a byte-level CLIP vocab.json and an empty merges.txt; return the vocab size."""
    symbols = byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + [BOS, EOS]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return len(tokens)


def build_pipeline(workdir: Path) -> Any:
    """Create the seeded tiny StableDiffusionPipeline (random weights, SD 1.5 layout)."""
    import diffusers as diffusers_module
    import torch
    import transformers as transformers_module

    # the libraries' own annotations vary between releases; treat them as untyped here
    diffusers: Any = diffusers_module
    transformers: Any = transformers_module

    vocab_dir = workdir / "vocab"
    vocab_size = write_tokenizer_files(vocab_dir)
    # from_pretrained reads vocab.json + merges.txt in both transformers 4.x and 5.x
    tokenizer = transformers.CLIPTokenizer.from_pretrained(
        str(vocab_dir),
        bos_token=BOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
        model_max_length=77,
    )
    if len(tokenizer) != vocab_size or tokenizer.convert_tokens_to_ids(EOS) != vocab_size - 1:
        raise RuntimeError(f"tiny tokenizer was not built as expected (size {len(tokenizer)}, want {vocab_size})")

    torch.manual_seed(SEED)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        attention_head_dim=4,
        cross_attention_dim=32,
        norm_num_groups=32,
    )
    torch.manual_seed(SEED)
    vae = diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=0.18215,
    )
    torch.manual_seed(SEED)
    text_encoder = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=32,
            hidden_act="quick_gelu",
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    return assemble_pipeline(unet, vae, text_encoder, tokenizer)


def assemble_pipeline(unet: Any, vae: Any, text_encoder: Any, tokenizer: Any) -> Any:
    """A diffusers SD 1.5 pipeline around these parts, with SD 1.5's PNDM schedule and no safety checker."""
    import diffusers

    scheduler = diffusers.PNDMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )
    for module in (unet, vae, text_encoder):
        module.eval()
    return diffusers.StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def strip_temp_paths(output: Path, source: Path) -> None:
    """Replace the temp-folder ``_name_or_path`` values so rebuilds are byte-identical."""
    for path in sorted(output.rglob("*.json")):
        config = json.loads(path.read_text(encoding="utf-8"))
        name = config.get("_name_or_path") if isinstance(config, dict) else None
        if isinstance(name, str) and name.startswith(str(source)):
            config["_name_or_path"] = "tiny-sd" + name[len(str(source)) :]
            path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def add_sd15_scheduler_keys(output: Path) -> None:
    """Add the DDIM-only ``clip_sample: false`` that SD 1.5's scheduler_config.json carries."""
    path = output / "scheduler" / "scheduler_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.setdefault("clip_sample", False)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_readme(output: Path) -> None:
    """Describe the fixture and how to rebuild it."""
    (output / "README.md").write_text(
        f"""# tiny-sd-int8-ov

Test fixture: a **random-weight** Stable Diffusion pipeline with the SD 1.5
*architecture* (CLIP text encoder, UNet2DConditionModel with CrossAttn/Down/Up
blocks, AutoencoderKL with 4 latent channels and an 8x downscale, PNDM scheduler
config of SD 1.5, no safety checker) but tiny widths, exported to OpenVINO IR
with int8 weight compression (optimum-intel). It produces noise-like images;
it only exists so tests can run the real openvino-genai pipelines quickly.

- UNet: block_out_channels (32, 64), layers_per_block 1, cross_attention_dim 32, sample_size 8
- VAE: block_out_channels (8, 8, 16, 16), latent_channels 4, scaling_factor 0.18215
- Text encoder: CLIP, hidden_size 32, 2 layers, 77 positions
- Tokenizer: byte-level CLIP BPE with no merges (256 byte symbols, their `</w>`
  forms, `<|startoftext|>`, `<|endoftext|>`)
- Weights initialised with `torch.manual_seed({SEED})`

Rebuild (needs the convert extra: torch, diffusers, transformers, optimum-intel):

```
{COMMAND}
```

## Tiny autoencoder (fast decoder)

`vae_encoder_tiny/` and `vae_decoder_tiny/` hold a random-weight, narrow twin of TAESD (diffusers
`AutoencoderTiny`) for `FAST_DECODER=true`, rebuilt with:

    python scripts/make_tiny_vae.py --model tests/fixtures/tiny-sd-int8-ov --tiny
""",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    """Build the diffusers pipeline, export it to int8 OpenVINO IR and write the README."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="fixture folder (replaced)")
    args = parser.parse_args(argv)
    output: Path = args.output.resolve()

    if output.exists():
        shutil.rmtree(output)
    with tempfile.TemporaryDirectory(prefix="tiny-sd-") as tmp:
        workdir = Path(tmp)
        pipe = build_pipeline(workdir)
        diffusers_dir = workdir / "diffusers"
        pipe.save_pretrained(str(diffusers_dir), safe_serialization=True)
        convert_model(diffusers_dir, output, weight_format="int8")
        strip_temp_paths(output, diffusers_dir)
    add_sd15_scheduler_keys(output)
    write_readme(output)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
