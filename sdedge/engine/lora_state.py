"""The engine's LoRA half: one adapter cache per model and one selector for all its pipelines.

Pipelines built from one set of compiled models share their LoRA state (seen with openvino-genai 2026.4:
a pipeline called without `adapters=` keeps what another one applied), so one `LoraSelector` serves the
full- and tiny-decoder pipelines alike, and every generate() passes its `adapters=`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdedge.engine.params import LoraWeight
from sdedge.errors import map_exceptions
from sdedge.foreign_errors import LORA_ERRORS
from sdedge.lora_adapters import AdapterCache, LoraSelector
from sdedge.loras import LoraNotFound, list_loras, parse_prompt, resolve_lora


def encoder_prompt(prompt: str) -> str:
    """The prompt the text encoder sees: A1111's <lora:...> tags taken out (checked at submission)."""
    with map_exceptions(LORA_ERRORS):
        return parse_prompt(prompt, math.inf)[0]


def lora_file(lora_dir: Path, name: str) -> Path:
    """A LoRA's file by its name below lora_dir, else by its alias (as A1111 matches them)."""
    try:
        return resolve_lora(lora_dir, name)
    except LoraNotFound:
        match = next((item.path for item in list_loras(lora_dir) if item.alias == name), None)
        if match is None:
            raise
        return match


@dataclass(frozen=True)
class LoraPolicy:
    """When a model's pipelines are LoRA-ready (LORA_PRELOAD, LORA_RELEASE_AFTER).

    LoRA-ready pipelines cost about 1.5x a plain one per UNet step even with no LoRA applied (measured
    on SD 1.5 at 512x512, scripts/measure_lora_cost.py), so by default a model runs plain pipelines and
    is rebuilt LoRA-ready by the first job that asks for a LoRA, and plain again by the first LoRA-free
    job after it (`release_after` LoRA-free jobs may run LoRA-ready first). Released at once, a LoRA-free
    image is the same bytes whatever ran before; LoRA-ready pipelines differ from plain ones by rounding.
    A rebuild from the compile cache costs less than the 1.5x of one 20-step guided image.
    """

    preload: bool = False
    release_after: int = 0


class EngineLoras:
    """Adapters for one model's pipelines: what to build them with, what to pass each generate()."""

    def __init__(self, model_dir: Path, lora_dir: Path, cache_size: int = 8, coverage: str = "all",
                 policy: LoraPolicy | None = None) -> None:
        self.lora_dir = Path(lora_dir)
        self.cache = AdapterCache(model_dir, cache_size, coverage)
        self.selector = LoraSelector(self.cache)
        self.policy = policy or LoraPolicy()
        self.ready = self.policy.preload  # are the pipelines built with adapters now?
        self._plain_jobs = 0  # LoRA-free jobs in a row while ready

    def wants_ready(self, loras: Sequence[LoraWeight]) -> bool:
        """Whether the next job should run on LoRA-ready pipelines (counts LoRA-free jobs)."""
        if any(lora.weight != 0.0 for lora in loras):
            self._plain_jobs = 0
            return True
        if not self.ready or self.policy.preload:
            return self.ready
        self._plain_jobs += 1
        return self._plain_jobs <= self.policy.release_after

    def set_ready(self, ready: bool) -> None:
        """The pipelines were rebuilt with (or without) adapters: apply LoRAs in full from now on."""
        self.ready, self._plain_jobs = ready, 0
        self.selector.invalidate()

    def enabling(self) -> dict[str, Any]:
        """Keywords for a pipeline constructor or compile(): LoRA can then change per call."""
        return {"adapters": self.cache.enabling_config()}

    def config(self, loras: Sequence[LoraWeight]) -> Any:
        """The `adapters=` of one generate(); weight-0 LoRAs are not even read."""
        with map_exceptions(LORA_ERRORS):
            pairs = [(self.cache.get(lora_file(self.lora_dir, lora.name), lora.name)[0], lora.weight)
                     for lora in loras if lora.weight != 0.0]
        return self.selector.config(pairs)

    def failed(self) -> None:
        """After a failed generate(): re-apply the adapters in full next time."""
        self.selector.invalidate()
