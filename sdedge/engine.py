"""The generation engine: one small interface, an openvino-genai implementation and a mock.

The engine takes fully resolved `GenerationParams` and returns PIL images. A step callback sees
every denoising step and can stop the run by returning True.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image, ImageDraw

from sdedge.errors import GenerationCanceled, GenerationError

log = logging.getLogger(__name__)

MAX_SEED = 2**32 - 1

# Our sampler names -> openvino-genai Scheduler.Type names. genai has no DPM++ family, and in
# current releases LMS_DISCRETE is a deprecated alias that runs DDIM; /samplers says so.
SAMPLERS: dict[str, str] = {
    "euler_a": "EULER_ANCESTRAL_DISCRETE",
    "euler": "EULER_DISCRETE",
    "ddim": "DDIM",
    "pndm": "PNDM",
    "lms": "LMS_DISCRETE",
    "lcm": "LCM",
    "auto": "AUTO",
}
SAMPLER_ALIASES: dict[str, str] = {"plms": "pndm", "euler_ancestral": "euler_a", "k_euler_a": "euler_a"}


def canonical_sampler(name: str) -> str | None:
    """Our name for a sampler, or None when it is not one we run."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    key = SAMPLER_ALIASES.get(key, key)
    return key if key in SAMPLERS else None


def random_seed() -> int:
    """A fresh seed in the range genai's TorchGenerator accepts."""
    return secrets.randbelow(MAX_SEED + 1)


@dataclass(frozen=True)
class GenerationParams:
    """Everything one generation needs, defaults already applied."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    guidance_scale: float
    sampler: str
    seed: int
    num_images: int = 1

    def seed_for(self, index: int) -> int:
        """Image i of a batch uses seed+i, as AUTOMATIC1111 does, so each image is reproducible alone."""
        return (self.seed + index) % (MAX_SEED + 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON responses."""
        return asdict(self)


@dataclass(frozen=True)
class StepEvent:
    """One finished denoising step."""

    image_index: int
    num_images: int
    step: int
    total_steps: int
    latent: np.ndarray | None = None

    @property
    def fraction(self) -> float:
        """Progress over the whole request, 0..1."""
        done = self.image_index * self.total_steps + self.step
        return done / max(1, self.num_images * self.total_steps)


StepCallback = Callable[[StepEvent], bool]


@dataclass
class GenerationOutput:
    """Images produced by one request, with their seeds and stage timings in milliseconds."""

    images: list[Image.Image]
    seeds: list[int]
    timings: dict[str, float] = field(default_factory=dict)


class Engine(Protocol):
    """What the server needs from an inference backend."""

    name: str
    requested_device: str
    device: str

    def generate(self, params: GenerationParams, on_step: StepCallback | None = None) -> GenerationOutput:
        """Run one request; raise GenerationCanceled when on_step asked to stop."""
        ...

    def info(self) -> dict[str, Any]:
        """Facts for /health: device, compiled shapes, versions."""
        ...


def _never_stop(_: StepEvent) -> bool:
    return False


class MockEngine:
    """Placeholder images for USE_MOCKS=true: no model, same interface."""

    name = "mock"

    def __init__(self, requested_device: str = "CPU") -> None:
        self.requested_device = requested_device
        self.device = "mock"

    def generate(self, params: GenerationParams, on_step: StepCallback | None = None) -> GenerationOutput:
        """Draw a seed-coloured gradient labelled MOCK, calling on_step like the real engine."""
        on_step = on_step or _never_stop
        images = []
        for index in range(params.num_images):
            for step in range(1, params.steps + 1):
                if on_step(StepEvent(index, params.num_images, step, params.steps)):
                    raise GenerationCanceled("generation canceled")
            images.append(_placeholder(params.width, params.height, params.seed_for(index)))
        return GenerationOutput(images, [params.seed_for(i) for i in range(params.num_images)])

    def info(self) -> dict[str, Any]:
        """Mock facts."""
        return {"engine": self.name, "compiled_shapes": []}


def _placeholder(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    start, end = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0.0, 1.0, width)[None, :, None]
    pixels = (start + (end - start) * ramp).astype(np.uint8)
    image = Image.fromarray(np.broadcast_to(pixels, (height, width, 3)).copy())
    ImageDraw.Draw(image).text((4, 4), "MOCK", fill=(255, 255, 255))
    return image


class OpenVINOEngine:
    """Stable Diffusion through openvino-genai, with CPU fallback and per-shape pipelines off CPU."""

    name = "openvino-genai"

    def __init__(self, model_path: Path, requested_device: str, *, cache_dir: Path | None = None,
                 static_cache_size: int = 4) -> None:
        import openvino_genai as ov_genai

        self._genai = ov_genai
        self.model_path = Path(model_path)
        self.requested_device = requested_device
        self._properties: dict[str, Any] = {"CACHE_DIR": str(cache_dir)} if cache_dir else {}
        self._schedulers: dict[str, Any] = {}
        self._static: OrderedDict[tuple[int, int, bool], Any] = OrderedDict()
        self._static_cache_size = static_cache_size
        self._lock = threading.Lock()
        self.device = pick_device(requested_device)
        self._load_pipelines()

    # -- loading -----------------------------------------------------------------------------
    def _load_pipelines(self) -> None:
        started = time.perf_counter()
        if self.device != "CPU":
            try:
                self._static_pipeline(512, 512, True)
            except Exception as exc:  # noqa: BLE001 - any compile failure means "use the CPU"
                log.warning("compiling for %s failed (%s); falling back to CPU", self.device, exc)
                self._static.clear()
                self.device = "CPU"
        if self.device == "CPU":
            self._dynamic = self._genai.Text2ImagePipeline(self.model_path, "CPU", **self._properties)
        self.load_seconds = time.perf_counter() - started
        log.info("model %s ready on %s in %.1f s", self.model_path, self.device, self.load_seconds)

    def _static_pipeline(self, width: int, height: int, guided: bool) -> Any:
        """GPU/NPU need static shapes: one compiled pipeline per shape, least recently used evicted."""
        key = (width, height, guided)
        if key in self._static:
            self._static.move_to_end(key)
            return self._static[key]
        pipe = self._genai.Text2ImagePipeline(self.model_path)
        pipe.reshape(1, height, width, 7.5 if guided else 1.0)
        pipe.compile(self.device, **self._properties)
        self._static[key] = pipe
        while len(self._static) > self._static_cache_size:
            self._static.popitem(last=False)
        return pipe

    def _pipeline(self, params: GenerationParams) -> Any:
        if self.device == "CPU":
            return self._dynamic
        return self._static_pipeline(params.width, params.height, params.guidance_scale > 1.0)

    def _scheduler(self, sampler: str) -> Any:
        if sampler not in self._schedulers:
            kind = getattr(self._genai.Scheduler.Type, SAMPLERS[sampler])
            config = self.model_path / "scheduler" / "scheduler_config.json"
            self._schedulers[sampler] = self._genai.Scheduler.from_config(config, kind)
        return self._schedulers[sampler]

    # -- generating --------------------------------------------------------------------------
    def generate(self, params: GenerationParams, on_step: StepCallback | None = None) -> GenerationOutput:
        """Generate params.num_images images one by one (seed+i each), stopping when on_step says so."""
        on_step = on_step or _never_stop
        output = GenerationOutput([], [])
        with self._lock:  # a genai pipeline runs one generate at a time
            pipe = self._pipeline(params)
            pipe.set_scheduler(self._scheduler(params.sampler))
            for index in range(params.num_images):
                output.images.append(self._generate_one(pipe, params, index, on_step))
                output.seeds.append(params.seed_for(index))
                _add_timings(output.timings, pipe.get_performance_metrics())
        return output

    def _generate_one(self, pipe: Any, params: GenerationParams, index: int, on_step: StepCallback) -> Image.Image:
        stop = threading.Event()

        def callback(step: int, num_steps: int, latent: Any) -> bool:
            if stop.is_set():
                return True
            event = StepEvent(index, params.num_images, step + 1, num_steps, _latent_array(latent))
            if on_step(event):
                stop.set()
            return stop.is_set()

        kwargs: dict[str, Any] = {
            "width": params.width,
            "height": params.height,
            "num_inference_steps": params.steps,
            "guidance_scale": params.guidance_scale,
            "num_images_per_prompt": 1,
            "generator": self._genai.TorchGenerator(params.seed_for(index)),
            "callback": callback,
        }
        if params.guidance_scale > 1.0:  # genai refuses a negative prompt it would ignore
            kwargs["negative_prompt"] = params.negative_prompt
        try:
            tensor = pipe.generate(params.prompt, **kwargs)
        except Exception as exc:
            raise GenerationError(f"generation failed: {exc}") from exc
        if stop.is_set():
            raise GenerationCanceled("generation canceled")
        return Image.fromarray(np.asarray(tensor.data)[0])

    def info(self) -> dict[str, Any]:
        """Device and compiled shapes for /health."""
        shapes = ["dynamic"] if self.device == "CPU" else [f"{w}x{h}{'' if g else ' no-cfg'}" for w, h, g in self._static]
        return {"engine": self.name, "compiled_shapes": shapes, "load_seconds": round(self.load_seconds, 3)}


def _latent_array(latent: Any) -> np.ndarray | None:
    try:
        return np.array(latent.data, copy=True)
    except Exception:  # noqa: BLE001 - previews are optional; never fail a step for one
        return None


def _add_timings(timings: dict[str, float], metrics: Any) -> None:
    """Sum genai's per-stage durations (ms) over the images of one request."""
    stages = {
        "text_encoder_ms": metrics.get_text_encoder_infer_duration,
        "unet_ms": metrics.get_unet_infer_duration,
        "vae_decoder_ms": metrics.get_vae_decoder_infer_duration,
        "generate_ms": metrics.get_generate_duration,
    }
    for name, read in stages.items():
        try:
            value = read()
            value = value.mean if hasattr(value, "mean") else float(value)
        except Exception:  # noqa: BLE001 - a stage that did not run has no metric
            continue
        timings[name] = round(timings.get(name, 0.0) + float(value), 3)


def available_devices() -> list[str]:
    """Devices OpenVINO sees on this machine."""
    import openvino as ov

    return list(ov.Core().available_devices)


def pick_device(requested: str) -> str:
    """The device to compile for: the requested one when present, else CPU (logged once)."""
    devices = available_devices()
    if requested == "AUTO":
        return next((d for d in devices if d.startswith("GPU")), "CPU")
    if requested == "CPU" or requested in devices:
        return requested
    log.warning("OpenVINO device %s is not available (found %s); falling back to CPU",
                requested, ", ".join(devices) or "none")
    return "CPU"
