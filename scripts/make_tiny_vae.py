#!/usr/bin/env python
"""Export a tiny autoencoder (TAESD, diffusers ``AutoencoderTiny``) as OpenVINO IR beside an SD model.

Writes ``FOLDER/vae_decoder_tiny/`` and ``FOLDER/vae_encoder_tiny/``, each holding
``openvino_model.xml``/``.bin`` and a ``config.json`` that openvino-genai's ``AutoencoderKL`` reads, so
the pipeline can use them instead of the full VAE (FastSD CPU's "TAESD" fast decoder)::

    vae = openvino_genai.AutoencoderKL(folder / "vae_encoder_tiny", folder / "vae_decoder_tiny")
    pipe = openvino_genai.InpaintingPipeline.stable_diffusion(scheduler, text_encoder, unet, vae)

Three sources of weights (the export itself is ``sdedge.tiny_autoencoder``, conventions in its docstring):

- default: random weights (``torch.manual_seed(0)``) with the exact TAESD architecture, for benchmarks
  (same FLOPs as the real TAESD, images are noise);
- ``--tiny``: random weights, TAESD's layout with tiny channel widths, for the test fixture;
- ``--weights``: real weights from a diffusers ``AutoencoderTiny`` folder or hub id. Users run
  ``sdedge convert MODEL --tiny-autoencoder`` instead, which picks ``madebyollin/taesd`` or
  ``madebyollin/taesdxl`` by the model's family (needs the convert extra: torch, diffusers).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sdedge.tiny_autoencoder import convert_tiny_autoencoder  # noqa: E402

SEED = 0


def main(argv: list[str] | None = None) -> int:
    """Build or load the AutoencoderTiny and export its decoder and encoder into the model folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="OpenVINO model folder to add the tiny VAE to")
    source_group = parser.add_mutually_exclusive_group()
    source_group.add_argument("--weights", help="diffusers AutoencoderTiny folder or hub id (e.g. madebyollin/taesd)")
    source_group.add_argument("--tiny", action="store_true", help="tiny channel widths (test fixture)")
    args = parser.parse_args(argv)
    folder: Path = args.model.expanduser().resolve()
    if not folder.is_dir():
        parser.error(f"{folder} is not a folder")
    convert_tiny_autoencoder(folder, args.weights, random_weights=args.weights is None, tiny=args.tiny, seed=SEED)
    print(f"wrote {folder / 'vae_decoder_tiny'} and {folder / 'vae_encoder_tiny'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
