"""What an OpenVINO engine is built from (`EngineSpec`) and the seam that builds it (`EngineFactory`).

The loader describes each engine it needs as a spec and asks its factory for it; the default factory,
`build_engine`, compiles a new OpenVINOEngine every time. An embedding process may give create_app
another factory: the test suite's hands one app after another an engine it loaded before for an equal
spec, since loading is most of the cost of starting an app on the tiny fixture models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sdedge.engine.lora_state import LoraPolicy
from sdedge.engine.openvino import OpenVINOEngine
from sdedge.engine.params import Engine


@dataclass(frozen=True)
class EngineSpec:
    """Every input of one OpenVINOEngine: the model folder, the device and the settings it is built with."""

    model_path: Path
    device: str  # as requested (the engine falls back to the CPU itself)
    properties: Mapping[str, object] = field(default_factory=dict)  # CACHE_DIR, threads, hint, mmap
    fast_decoder: bool = False
    lora_dir: Path | None = None  # None: LoRA is off
    lora_cache_size: int = 8
    lora_coverage: str = "all"
    lora_policy: LoraPolicy = field(default_factory=LoraPolicy)
    static_cache_size: int = 4
    tiny_previews: bool = False  # live previews through the tiny autoencoder (PREVIEW_DECODER=tiny)
    cpu_static: bool = False  # CPU_STATIC_SHAPES resolved for this model


EngineFactory = Callable[[EngineSpec], Engine]


def build_engine(spec: EngineSpec) -> Engine:
    """A newly compiled engine for spec (the default factory)."""
    return OpenVINOEngine(
        spec.model_path,
        spec.device,
        properties=dict(spec.properties),
        fast_decoder=spec.fast_decoder,
        lora_dir=spec.lora_dir,
        lora_cache_size=spec.lora_cache_size,
        lora_coverage=spec.lora_coverage,
        lora_policy=spec.lora_policy,
        static_cache_size=spec.static_cache_size,
        tiny_previews=spec.tiny_previews,
        cpu_static=spec.cpu_static,
    )
