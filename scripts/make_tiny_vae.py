#!/usr/bin/env python
"""Export a tiny autoencoder (TAESD, diffusers ``AutoencoderTiny``) as OpenVINO IR beside an SD 1.5 model.

Writes ``FOLDER/vae_decoder_tiny/`` and ``FOLDER/vae_encoder_tiny/``, each holding
``openvino_model.xml``/``.bin`` and a ``config.json`` that openvino-genai's ``AutoencoderKL`` reads, so
the pipeline can use them instead of the full VAE (FastSD CPU's "TAESD" fast decoder)::

    vae = openvino_genai.AutoencoderKL(folder / "vae_encoder_tiny", folder / "vae_decoder_tiny")
    pipe = openvino_genai.InpaintingPipeline.stable_diffusion(scheduler, text_encoder, unet, vae)

Three sources of weights:

- default: random weights (``torch.manual_seed(0)``) with the exact TAESD architecture, for benchmarks
  (same FLOPs as the real TAESD, images are noise);
- ``--tiny``: random weights, TAESD's layout with tiny channel widths, for the test fixture;
- ``--weights``: real weights from a diffusers ``AutoencoderTiny`` folder or hub id. This is how a user
  converts the real TAESD for SD 1.x (needs the convert extra: torch, diffusers)::

      python scripts/make_tiny_vae.py --model ~/.cache/sdedge/<model> --weights madebyollin/taesd

  or, offline, after ``huggingface-cli download madebyollin/taesd --local-dir taesd``:
  ``--weights taesd``. (Use ``madebyollin/taesd``, not ``taesdxl``: the latent spaces differ.)

Conventions (checked against openvino-genai's AutoencoderKL):

- The UNet's latents are in *scaled* space (SD 1.5: z * 0.18215). TAESD is trained on that space
  directly, so ``config.json`` keeps AutoencoderTiny's ``scaling_factor: 1.0`` and ``shift_factor: 0.0``:
  genai divides decoder input by scaling_factor and multiplies encoder output by it, both no-ops.
- Decoder IR: input ``latent_sample`` [N,4,H/8,W/8], output ``sample`` [N,3,H,W] in [-1, 1]
  (``AutoencoderTiny.decode``: tanh(x/3)*3 clamp, layers, then *2-1); genai appends (x/2+0.5)*255, clamp,
  u8 NHWC, as for the full VAE.
- Encoder IR: input ``sample`` [N,3,H,W] in [-1, 1] (AutoencoderTiny maps it to [0, 1] itself), output
  ``latent_sample`` [N,4,H/8,W/8] already in the UNet's space. genai's encoder accepts either
  ``latent_parameters`` (8 channels, mean+logvar, sampled with the generator) or ``latent_sample``
  (used as is); TAESD has no variance, so it is exported as ``latent_sample``.
- ``block_out_channels`` in the config has 4 entries, so genai's VAE scale factor is 2**3 = 8.
- Shapes are dynamic (batch, height, width), like optimum-intel's VAE IR, so one CPU pipeline serves
  every size and ``pipe.reshape`` still works for GPU/NPU.
- Weights are saved as fp16 (``compress_to_fp16=True``): TAESD is published in fp16 and tolerates it,
  the files are half the size, and OpenVINO's CPU plugin folds the fp16->fp32 conversion of conv weights
  at compile time, so inference speed is unchanged (GPU/NPU run fp16 anyway).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

SEED = 0
DECODER_DIR, ENCODER_DIR = "vae_decoder_tiny", "vae_encoder_tiny"
# TAESD's layout (4 stages, 8x scale) with tiny widths and one block per stage: tens of KB of IR
TINY_CONFIG: dict[str, Any] = {
    "encoder_block_out_channels": (8, 8, 8, 8),
    "decoder_block_out_channels": (8, 8, 8, 8),
    "num_encoder_blocks": (1, 1, 1, 1),
    "num_decoder_blocks": (1, 1, 1, 1),
}
EXAMPLE_SIZE = 64  # pixels; the exported shapes are dynamic


def build_autoencoder(weights: str | None, tiny: bool) -> Any:
    """The AutoencoderTiny to export: real weights, or seeded random weights (full or tiny widths)."""
    import torch
    from diffusers import AutoencoderTiny

    if weights is not None:
        vae = AutoencoderTiny.from_pretrained(weights, torch_dtype=torch.float32)
    else:
        torch.manual_seed(SEED)
        vae = AutoencoderTiny(**(TINY_CONFIG if tiny else {}))
    if vae.config.latent_channels != 4:
        raise SystemExit(f"expected a 4-channel latent space (SD 1.x), got {vae.config.latent_channels}")
    return vae.float().eval()


def genai_config(vae: Any, source: str) -> dict[str, Any]:
    """AutoencoderTiny's diffusers config plus the keys genai's AutoencoderKL::Config reads."""
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(vae.config).items()
              if k not in ("_name_or_path", "_use_default_values")}  # both vary between runs
    config["_class_name"] = "AutoencoderTiny"
    config["block_out_channels"] = list(vae.config.decoder_block_out_channels)  # len 4 -> scale factor 8
    config["scaling_factor"] = float(vae.config.scaling_factor)  # 1.0: TAESD works in the UNet's space
    config["shift_factor"] = float(vae.config.get("shift_factor", 0.0) or 0.0)
    config["_sdedge_source"] = source
    return config


def export(vae: Any, folder: Path, source: str) -> None:
    """Write FOLDER/vae_decoder_tiny and FOLDER/vae_encoder_tiny (replacing them)."""
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
    parts = [
        (DECODER_DIR, Decoder(), torch.zeros(1, 4, latent, latent), ("latent_sample", [-1, 4, -1, -1]), "sample"),
        (ENCODER_DIR, Encoder(), torch.zeros(1, 3, EXAMPLE_SIZE, EXAMPLE_SIZE), ("sample", [-1, 3, -1, -1]),
         "latent_sample"),
    ]
    config = genai_config(vae, source)
    for name, module, example, (input_name, shape), output_name in parts:
        with torch.no_grad():
            model = ov.convert_model(module.eval(), example_input=example, input=[(input_name, ov.PartialShape(shape))])
        model.inputs[0].get_tensor().set_names({input_name})
        model.outputs[0].get_tensor().set_names({output_name})
        out = folder / name
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        ov.save_model(model, str(out / "openvino_model.xml"), compress_to_fp16=True)
        (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    """Build or load the AutoencoderTiny and export its decoder and encoder into the model folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="SD 1.5 OpenVINO model folder to add the tiny VAE to")
    source_group = parser.add_mutually_exclusive_group()
    source_group.add_argument("--weights", help="diffusers AutoencoderTiny folder or hub id (e.g. madebyollin/taesd)")
    source_group.add_argument("--tiny", action="store_true", help="tiny channel widths (test fixture)")
    args = parser.parse_args(argv)
    folder: Path = args.model.expanduser().resolve()
    if not folder.is_dir():
        parser.error(f"{folder} is not a folder")
    vae = build_autoencoder(args.weights, args.tiny)
    if args.weights is not None:
        source = f"weights {args.weights}"
    else:
        source = f"random weights, torch.manual_seed({SEED}), {'tiny widths' if args.tiny else 'TAESD architecture'}"
    export(vae, folder, source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
