"""Intermediate step images a job keeps when asked (`step_images`: how many), as the denoising demo shows them.

Each is the step's cheap latent preview (no VAE call) written as its own file, `job-<hex>-step-<n>.png`,
every `ceil(steps / count)` steps, so a run of 25 steps asked for 5 keeps steps 5, 10, 15, 20 and 25.
The names follow from the job's steps and the count, so a reader finds the files of a running job from
its progress alone; the finished job lists them in `result.step_files`.
"""

from __future__ import annotations

import math
from typing import Any

PARAMS_KEY = "step_images"  # in a job's params: how many step images to keep (absent: none)
MAX_STEP_IMAGES = 25


def every(params: dict[str, Any]) -> int:
    """Keep one step image every this many steps (0: none) for a job's params."""
    count = int(params.get(PARAMS_KEY) or 0)
    steps = int(params.get("steps") or 0)
    return max(1, math.ceil(steps / count)) if count and steps else 0


def file_name(job_id: str, step: int) -> str:
    """The stem of a job's step image (FileStore.save adds .png)."""
    return f"{job_id}-step-{step}"


def names_up_to(job_id: str, params: dict[str, Any], step: int) -> list[str]:
    """The files a job has kept by the time it reached step (oldest first)."""
    cadence = every(params)
    return [f"{file_name(job_id, n)}.png" for n in range(cadence, step + 1, cadence)] if cadence else []
