#!/usr/bin/env python
"""Fit a model's cheap-preview map (latent channels -> RGB) from its own VAE encoder, without torch.

Step previews multiply each latent cell by a channels x 3 matrix instead of running the VAE. The
matrix depends on the VAE: SD 1.x/2.x share one, SDXL, SD3 and FLUX each need their own (16 channels
for SD3/FLUX). This script encodes a fixed set of synthetic pictures (flat colours, gradients, colour
noise at several scales) with the model's ``vae_encoder`` IR, brings the latents into the denoiser's
space (``(z - shift_factor) * scaling_factor``, what step callbacks show), average-pools each picture
to the latent grid and solves least squares ``rgb ~ latent @ W + b``::

    python scripts/fit_preview_factors.py ~/.cache/sdedge/<model>   # prints JSON: W, b, R^2

Run it on a real model (the fixtures' random VAEs give a valid but meaningless fit). Seeded: the same
model gives the same numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

SIZE = 128  # pixels per synthetic picture
SEED = 0


def synthetic_images(count: int = 48, size: int = SIZE) -> np.ndarray:
    """[N, 3, size, size] float32 pictures in [-1, 1] covering the colour cube and several scales."""
    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    images = []
    for i in range(count):
        kind = i % 3
        if kind == 0:  # flat colour
            img = np.broadcast_to(rng.uniform(0, 1, (3, 1, 1)), (3, size, size))
        elif kind == 1:  # gradient between two colours
            a, b = rng.uniform(0, 1, (2, 3, 1, 1))
            t = (x * rng.uniform(-1, 1) + y * rng.uniform(-1, 1)) % 1.0
            img = a + (b - a) * t
        else:  # smooth colour noise: upsampled random cells
            cells = int(rng.choice([4, 8, 16]))
            small = rng.uniform(0, 1, (3, cells, cells))
            img = np.kron(small, np.ones((size // cells, size // cells)))
        images.append(np.asarray(img, dtype=np.float32) * 2 - 1)
    return np.stack(images).astype(np.float32)


def encode(model_dir: Path, images: np.ndarray) -> np.ndarray:
    """Latents of the images in the denoiser's space, [N, C, h, w] (the distribution mean)."""
    import openvino as ov

    config = json.loads((model_dir / "vae_encoder" / "config.json").read_text(encoding="utf-8"))
    scale = float(config.get("scaling_factor") or 1.0)
    shift = float(config.get("shift_factor") or 0.0)
    channels = int(config.get("latent_channels", 4))
    compiled = ov.Core().compile_model(str(model_dir / "vae_encoder" / "openvino_model.xml"), "CPU")
    out = np.concatenate([compiled(images[i : i + 8])[0] for i in range(0, len(images), 8)])
    latent = out[:, :channels]  # latent_parameters: mean then log-variance; latent_sample: as is
    return ((latent - shift) * scale).astype(np.float32)


def pool(images: np.ndarray, h: int, w: int) -> np.ndarray:
    """Average-pool [N, 3, H, W] to [N, 3, h, w]."""
    n, c, big_h, big_w = images.shape
    return images.reshape(n, c, h, big_h // h, w, big_w // w).mean(axis=(3, 5))


def fit(latents: np.ndarray, rgb: np.ndarray) -> dict[str, Any]:
    """Least-squares W (C x 3), b (3) with rgb ~ latent @ W + b, and R^2 per colour."""
    channels = latents.shape[1]
    x = latents.transpose(0, 2, 3, 1).reshape(-1, channels).astype(np.float64)
    y = rgb.transpose(0, 2, 3, 1).reshape(-1, 3).astype(np.float64)
    design = np.hstack([x, np.ones((len(x), 1))])
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ solution
    r2 = 1.0 - residual.var(axis=0) / np.maximum(y.var(axis=0), 1e-12)
    return {
        "latent_rgb": [[round(float(v), 4) for v in row] for row in solution[:-1]],
        "bias": [round(float(v), 4) for v in solution[-1]],
        "r2": [round(float(v), 4) for v in r2],
        "samples": int(len(x)),
    }


def fit_model(model_dir: Path) -> dict[str, Any]:
    """Encode the synthetic set with model_dir's VAE and fit the preview map."""
    images = synthetic_images()
    latents = encode(model_dir, images)
    return fit(latents, pool(images, latents.shape[2], latents.shape[3]))


def main(argv: list[str] | None = None) -> int:
    """Print the fitted map as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="OpenVINO model folder with vae_encoder/")
    args = parser.parse_args(argv)
    if not (args.model / "vae_encoder" / "openvino_model.xml").is_file():
        print(f"{args.model} has no vae_encoder/openvino_model.xml", file=sys.stderr)
        return 2
    print(json.dumps(fit_model(args.model), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
