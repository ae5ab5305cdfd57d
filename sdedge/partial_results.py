"""What an interrupted job keeps (A1111's interrupt): the images it finished and its last step decoded.

AUTOMATIC1111 hands the caller of an interrupted txt2img the image as far as it got; the worker does the
same when the cancel asked for it, with one VAE decode of the last latent the engine reported.
"""

from __future__ import annotations

import logging
from typing import Any

from sdedge.engine.params import Engine, GenerationParams, PartialOutput
from sdedge.file_store import FileStore
from sdedge.infotext import infotext

log = logging.getLogger(__name__)


def keep_partial(engine: Engine, images: FileStore, job_id: str, params: GenerationParams, partial: PartialOutput,
                 model: str, step: int | None) -> tuple[dict[str, Any], list[str]]:
    """Save what a stopped run made as the job's images; its result and files (none when decoding fails)."""
    made, seeds = list(partial.images), list(partial.seeds)
    try:
        if partial.latent is not None and partial.latent_seed is not None:
            made.append(engine.decode_latent(partial.latent, params))
            seeds.append(partial.latent_seed)
        files = [images.save(f"{job_id}-{i}", image, infotext(params, seed, model))
                 for i, (image, seed) in enumerate(zip(made, seeds))]
    except Exception:  # noqa: BLE001 - the partial image is a courtesy; the cancel must still land
        log.exception("keeping the partial image of interrupted job %s failed", job_id)
        files, seeds = [], []
    result = {"files": files, "seed": params.seed, "seeds": seeds, "parameters": params.to_dict(), "timings": {},
              "interrupted": True, "interrupted_at_step": step}
    return result, files
