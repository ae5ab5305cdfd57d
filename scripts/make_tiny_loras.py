#!/usr/bin/env python
"""Build the tiny LoRA test fixtures for tests/fixtures/tiny-sd-int8-ov (seeded random, numpy only).

Writes into tests/fixtures/loras/:

- ``tiny-kohya.safetensors``: A1111/kohya layout (``lora_unet_*``/``lora_te_*`` with ``.lora_down``,
  ``.lora_up``, ``.alpha``; alpha = rank/2), fp16, every attention-block layer and the text encoder;
- ``tiny-peft.safetensors``: diffusers/PEFT layout (``unet.*.lora_A.weight``/``lora_B``, and
  ``text_encoder.*``), fp32, attention projections only; blends with the kohya one into a third image;
- ``tiny-lcm-layout.safetensors``: LCM-LoRA's layout (kohya names on resnets too: 3x3 ``conv1``/``conv2``,
  ``time_emb_proj``, ``conv_shortcut``, samplers), to show what openvino-genai can and cannot adapt;
- ``tiny-sdxl.safetensors``: kohya SDXL names and widths (``lora_te1``/``lora_te2``, ``input_blocks``,
  cross-attention from 2048): another family, must be refused;
- ``tiny-loha.safetensors``: LyCORIS LoHa (``hada_w1_a``...), a layout genai cannot read;
- ``tiny-xl-kohya.safetensors``: kohya SDXL layout (``lora_te1_``/``lora_te2_``, ``lora_unet_`` diffusers
  names) for tests/fixtures/tiny-sdxl-int8-ov: an SDXL LoRA the SDXL fixture takes.

The tiny model's layer names and shapes come from its IR, so only openvino and numpy are needed.
Rebuilds are byte-identical: ``python scripts/make_tiny_loras.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sdedge.lora_adapters import Layer, ModelLayers, safetensors_bytes  # noqa: E402

MODEL = ROOT / "tests" / "fixtures" / "tiny-sd-int8-ov"
SDXL_MODEL = ROOT / "tests" / "fixtures" / "tiny-sdxl-int8-ov"
OUTPUT = ROOT / "tests" / "fixtures" / "loras"
GAIN = 3.0  # up-matrix scale: weight 1 moves the tiny model's 64x64 image by ~10-20 levels on average


def _pair(rng: np.random.Generator, layer: Layer, rank: int, kernel: tuple[int, ...] = ()) -> tuple[np.ndarray, ...]:
    fan_in = layer.inp * int(np.prod(kernel or (1,)))
    down = rng.standard_normal((rank, layer.inp) + kernel) / np.sqrt(fan_in)
    up = rng.standard_normal((layer.out, rank) + tuple(1 for _ in kernel)) * GAIN / np.sqrt(rank)
    return down, up


def kohya(layers: ModelLayers, seed: int, rank: int, alpha: float, keep: Callable[[Layer], bool],
          dtype: type = np.float16, te: bool = True) -> dict[str, np.ndarray]:
    """kohya/A1111 names: lora_unet_<module with _>.lora_down.weight, conv layers as 4D tensors."""
    rng, out = np.random.default_rng(seed), {}
    encoders = [(prefix, layers.parts[part]) for part, prefix in layers.te_prefixes.items()]  # SD: lora_te_
    tables = [("lora_unet_", layers.parts["unet"])] + (encoders if te else [])
    for prefix, table in tables:
        for module, layer in sorted(table.items()):
            if prefix == "lora_unet_" and not keep(layer):
                continue
            conv = "conv" in layer.path or "proj_in" in layer.path or "proj_out" in layer.path
            down, up = _pair(rng, layer, rank, layer.kernel if conv and layer.kernel else ())
            out[f"{prefix}{module}.lora_down.weight"] = down.astype(dtype)
            out[f"{prefix}{module}.lora_up.weight"] = (up * rank / alpha).astype(dtype)  # alpha/rank undoes it
            out[f"{prefix}{module}.alpha"] = np.array(alpha, dtype)
    return out


def peft(layers: ModelLayers, seed: int, rank: int) -> dict[str, np.ndarray]:
    """diffusers/PEFT names: unet.<module>.lora_A.weight / lora_B, text_encoder.<module>..."""
    rng, out = np.random.default_rng(seed), {}
    for prefix, part, patterns in (("unet.", "unet", ("attn1.to_", "attn2.to_")), ("text_encoder.", "text_encoder",
                                                                                  ("self_attn.",))):
        for _, layer in sorted(layers.parts[part].items()):
            if any(p in layer.path for p in patterns):
                down, up = _pair(rng, layer, rank)
                out[f"{prefix}{layer.path}.lora_A.weight"] = down.astype(np.float32)
                out[f"{prefix}{layer.path}.lora_B.weight"] = up.astype(np.float32)
    return out


def sdxl(seed: int) -> dict[str, np.ndarray]:
    """A few SDXL-shaped kohya tensors: text encoders 768/1280 wide, cross-attention from 2048."""
    rng, out = np.random.default_rng(seed), {}
    shapes = {"lora_te1_text_model_encoder_layers_0_self_attn_q_proj": (768, 768),
              "lora_te2_text_model_encoder_layers_0_self_attn_q_proj": (1280, 1280),
              "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q": (640, 640),
              "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k": (2048, 640)}
    for module, (inp, outp) in shapes.items():
        out[f"{module}.lora_down.weight"] = (rng.standard_normal((2, inp)) / np.sqrt(inp)).astype(np.float16)
        out[f"{module}.lora_up.weight"] = rng.standard_normal((outp, 2)).astype(np.float16)
        out[f"{module}.alpha"] = np.array(2.0, np.float16)
    return out


def loha(layers: ModelLayers, seed: int) -> dict[str, np.ndarray]:
    """LyCORIS LoHa tensors (hada_w1_a/b, hada_w2_a/b) on two layers."""
    rng, out = np.random.default_rng(seed), {}
    for module, layer in sorted(layers.parts["unet"].items())[:2]:
        for w in ("hada_w1_a", "hada_w2_a"):
            out[f"lora_unet_{module}.{w}"] = rng.standard_normal((layer.out, 2)).astype(np.float16)
        for w in ("hada_w1_b", "hada_w2_b"):
            out[f"lora_unet_{module}.{w}"] = rng.standard_normal((2, layer.inp)).astype(np.float16)
        out[f"lora_unet_{module}.alpha"] = np.array(2.0, np.float16)
    return out


def in_attention(layer: Layer) -> bool:
    """Layers of the transformer blocks and their 1x1 projections (what kohya trains by default)."""
    return ".attentions." in layer.path


def build(model: Path, sdxl_model: Path = SDXL_MODEL) -> dict[str, tuple[dict[str, np.ndarray], dict[str, str]]]:
    """Every fixture's tensors and metadata."""
    layers = ModelLayers.from_model(model)
    xl_layers = ModelLayers.from_model(sdxl_model)
    meta = {"ss_network_module": "networks.lora", "ss_base_model_version": "sd_v1"}
    return {
        "tiny-kohya": (kohya(layers, 1, rank=4, alpha=2.0, keep=in_attention),
                       {**meta, "ss_output_name": "tiny kohya alias", "ss_network_dim": "4", "ss_network_alpha": "2"}),
        "tiny-peft": (peft(layers, 2, rank=8), {}),
        "tiny-lcm-layout": (kohya(layers, 3, rank=4, alpha=4.0, keep=lambda layer: True, te=False), meta),
        "tiny-sdxl": (sdxl(4), {"ss_base_model_version": "sdxl_base_v1-0", "ss_network_module": "networks.lora"}),
        "tiny-loha": (loha(layers, 5), {"ss_network_module": "lycoris.kohya"}),
        "tiny-xl-kohya": (kohya(xl_layers, 6, rank=4, alpha=2.0, keep=in_attention),
                          {"ss_network_module": "networks.lora", "ss_base_model_version": "sdxl_base_v1-0"}),
    }


def main(argv: list[str] | None = None) -> int:
    """Write the fixtures (or into --output)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    for name, (tensors, metadata) in build(args.model).items():
        path = args.output / f"{name}.safetensors"
        path.write_bytes(safetensors_bytes(tensors, metadata))
        print(f"wrote {path} ({path.stat().st_size} bytes, {len(tensors)} tensors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
