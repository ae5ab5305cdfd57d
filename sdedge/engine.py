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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from sdedge.errors import GenerationCanceled, GenerationError
from sdedge.images import composite
from sdedge.rng import genai_generator
from sdedge.style import VaeEncoder, adain, img2img_strength

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
    mode: str = "text2img"
    strength: float = 1.0
    style_strength: float = 0.7
    content_strength: float = 0.3

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GenerationParams:
        """Rebuild from to_dict() output (a stored job), ignoring keys that are not parameters."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

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
class ImageInputs:
    """Input images, already fitted to the output size: init/inpaint/content image, mask, style image."""

    image: Image.Image | None = None
    mask: Image.Image | None = None
    style: Image.Image | None = None


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

    def generate(self, params: GenerationParams, on_step: StepCallback | None = None,
                 inputs: ImageInputs | None = None) -> GenerationOutput:
        """Run one request; raise GenerationCanceled when on_step asked to stop."""
        ...

    def info(self) -> dict[str, Any]:
        """Facts for /health: device, compiled shapes, versions."""
        ...


def never_stop(_: StepEvent) -> bool:
    """The default step callback: never asks to stop."""
    return False


@dataclass
class _Pipelines:
    """openvino-genai pipelines sharing one set of compiled weights (inpaint is None without a VAE encoder)."""

    text2image: Any
    image2image: Any = None
    inpaint: Any = None


class OpenVINOEngine:
    """Stable Diffusion through openvino-genai, with CPU fallback and per-shape pipelines off CPU."""

    name = "openvino-genai"

    def __init__(self, model_path: Path, requested_device: str, *, properties: dict[str, Any] | None = None,
                 static_cache_size: int = 4, fast_decoder: bool = False) -> None:
        import openvino_genai as ov_genai

        self._genai = ov_genai
        self.model_path = Path(model_path)
        self.requested_device = requested_device
        self._properties: dict[str, Any] = dict(properties or {})  # CACHE_DIR, threads, hint, mmap
        self._schedulers: dict[str, Any] = {}
        self._static: OrderedDict[tuple[int, int, bool], _Pipelines] = OrderedDict()
        self._static_cache_size = static_cache_size
        self._lock = threading.Lock()
        self.device = pick_device(requested_device)
        self.fast_decoder = fast_decoder and self._has_tiny_decoder()
        self._load_pipelines()
        self._vae_encoder = VaeEncoder(self.model_path, self.device, self._properties, _scaling_factor(model_path))

    # -- loading -----------------------------------------------------------------------------
    def _has_tiny_decoder(self) -> bool:
        if (self.model_path / "vae_decoder_tiny" / "openvino_model.xml").is_file():
            return True
        log.warning("FAST_DECODER is on but %s has no vae_decoder_tiny/: using the full VAE "
                    "(scripts/make_tiny_vae.py converts TAESD)", self.model_path)
        return False

    def _load_pipelines(self) -> None:
        started = time.perf_counter()
        if self.device != "CPU":
            try:
                self._static_pipelines(512, 512, True)
            except Exception as exc:  # noqa: BLE001 - any compile failure means "use the CPU"
                log.warning("compiling for %s failed (%s); falling back to CPU", self.device, exc)
                self._static.clear()
                self.device = "CPU"
        if self.device == "CPU":
            self._dynamic = self._build(lambda pipe: None, lambda cls: self._construct(cls, "CPU"))
        self.load_seconds = time.perf_counter() - started
        log.info("model %s ready on %s in %.1f s", self.model_path, self.device, self.load_seconds)

    def _construct(self, cls: Any, device: str | None) -> Any:
        """A pipeline of class cls from the model folder, compiled on device when given.

        With the fast decoder, the pipeline is assembled from its parts around the tiny autoencoder
        (TAESD); its encoder and decoder go together, because genai takes the latent scaling from
        the decoder's config.
        """
        if not self.fast_decoder:
            return cls(self.model_path, device, **self._properties) if device else cls(self.model_path)
        g, path = self._genai, self.model_path
        tiny_encoder = path / "vae_encoder_tiny"
        if cls is g.InpaintingPipeline and not tiny_encoder.is_dir():
            raise GenerationError("no vae_encoder_tiny beside vae_decoder_tiny")
        vae = (g.AutoencoderKL(tiny_encoder, path / "vae_decoder_tiny") if tiny_encoder.is_dir()
               else g.AutoencoderKL(path / "vae_decoder_tiny"))
        pipe = cls.stable_diffusion(g.Scheduler.from_config(path / "scheduler" / "scheduler_config.json"),
                                    g.CLIPTextModel(path / "text_encoder"), g.UNet2DConditionModel(path / "unet"), vae)
        if device:
            pipe.compile(device, **self._properties)
        return pipe

    def _build(self, compile_step: Callable[[Any], None], construct: Callable[[Any], Any]) -> _Pipelines:
        """One InpaintingPipeline with Text2Image and Image2Image derived from it: the weights are shared."""
        try:
            inpaint = construct(self._genai.InpaintingPipeline)
        except Exception as exc:  # noqa: BLE001 - e.g. no vae_encoder: text-to-image still works
            log.warning("image inputs unavailable (%s); serving text-to-image only", exc)
            text2image = construct(self._genai.Text2ImagePipeline)
            compile_step(text2image)
            return _Pipelines(text2image)
        compile_step(inpaint)
        return _Pipelines(self._genai.Text2ImagePipeline(inpaint), self._genai.Image2ImagePipeline(inpaint), inpaint)

    def _static_pipelines(self, width: int, height: int, guided: bool) -> _Pipelines:
        """GPU/NPU need static shapes: one compiled set per shape, least recently used evicted."""
        key = (width, height, guided)
        if key not in self._static:
            def compile_step(pipe: Any) -> None:
                pipe.reshape(1, height, width, 7.5 if guided else 1.0)
                pipe.compile(self.device, **self._properties)

            self._static[key] = self._build(compile_step, lambda cls: self._construct(cls, None))
            while len(self._static) > self._static_cache_size:
                self._static.popitem(last=False)
        self._static.move_to_end(key)
        return self._static[key]

    def _pipelines(self, params: GenerationParams) -> _Pipelines:
        if self.device == "CPU":
            return self._dynamic
        return self._static_pipelines(params.width, params.height, params.guidance_scale > 1.0)

    def _scheduler(self, sampler: str) -> Any:
        if sampler not in self._schedulers:
            kind = getattr(self._genai.Scheduler.Type, SAMPLERS[sampler])
            config = self.model_path / "scheduler" / "scheduler_config.json"
            self._schedulers[sampler] = self._genai.Scheduler.from_config(config, kind)
        return self._schedulers[sampler]

    @property
    def supports_image_inputs(self) -> bool:
        """True when the model has a VAE encoder, so img2img, inpainting and style transfer work."""
        sets = [self._dynamic] if self.device == "CPU" else list(self._static.values())
        return bool(sets) and sets[0].inpaint is not None

    # -- generating --------------------------------------------------------------------------
    def generate(self, params: GenerationParams, on_step: StepCallback | None = None,
                 inputs: ImageInputs | None = None) -> GenerationOutput:
        """Generate params.num_images images one by one (seed+i each), stopping when on_step says so."""
        on_step = on_step or never_stop
        inputs = inputs or ImageInputs()
        output = GenerationOutput([], [])
        with self._lock:  # a genai pipeline runs one generate at a time
            pipes = self._pipelines(params)
            if params.mode == "style-transfer":
                inputs = self._stylize(pipes, params, inputs)
            for index in range(params.num_images):
                output.images.append(self._generate_one(pipes, params, inputs, index, on_step, output.timings))
                output.seeds.append(params.seed_for(index))
        return output

    def _stylize(self, pipes: _Pipelines, params: GenerationParams, inputs: ImageInputs) -> ImageInputs:
        """AdaIN of the content latents towards the style's, decoded back to an init image."""
        if inputs.image is None or inputs.style is None:
            raise GenerationError("style transfer needs a content and a style image")
        content, style = self._vae_encoder.encode(inputs.image), self._vae_encoder.encode(inputs.style)
        mixed = adain(content, style, params.style_strength)
        decoded = pipes.text2image.decode(self._ov_tensor(mixed))
        return ImageInputs(image=Image.fromarray(np.asarray(decoded.data)[0]))

    def _generate_one(self, pipes: _Pipelines, params: GenerationParams, inputs: ImageInputs, index: int,
                      on_step: StepCallback, timings: dict[str, float]) -> Image.Image:
        stop = threading.Event()

        def callback(step: int, num_steps: int, latent: Any) -> bool:
            if not stop.is_set() and on_step(StepEvent(index, params.num_images, step + 1, num_steps,
                                                       _latent_array(latent))):
                stop.set()
            return stop.is_set()

        pipe, args, kwargs = self._call_for(pipes, params, inputs)
        if pipe is None:  # strength 0: nothing to denoise, the input is the answer
            return args[0]
        pipe.set_scheduler(self._scheduler(params.sampler))
        kwargs.update(self._common_kwargs(params, index), callback=callback)
        try:
            tensor = pipe.generate(params.prompt, *args, **kwargs)
        except Exception as exc:
            raise GenerationError(f"generation failed: {exc}") from exc
        if stop.is_set():
            raise GenerationCanceled("generation canceled")
        _add_timings(timings, pipe.get_performance_metrics())  # the pipeline that ran, not always text2image
        image = Image.fromarray(np.asarray(tensor.data)[0])
        if params.mode == "inpaint" and inputs.image is not None and inputs.mask is not None:
            return composite(inputs.image, image, inputs.mask)  # unmasked pixels stay exactly as given
        return image

    def _call_for(self, pipes: _Pipelines, params: GenerationParams,
                  inputs: ImageInputs) -> tuple[Any, list[Any], dict[str, Any]]:
        """The pipeline, positional image arguments and mode-specific keywords for params.mode."""
        if params.mode == "text2img":
            return pipes.text2image, [], {"width": params.width, "height": params.height}
        if pipes.inpaint is None or inputs.image is None:
            raise GenerationError(f"{params.mode} needs an input image and a model with a VAE encoder")
        strength = img2img_strength(params.content_strength) if params.mode == "style-transfer" else params.strength
        if strength <= 0:
            return None, [inputs.image], {}
        if params.mode == "inpaint":
            if inputs.mask is None:
                raise GenerationError("inpainting needs a mask")
            images = [self._ov_image(inputs.image), self._ov_image(inputs.mask.convert("RGB"))]
            # without an explicit size genai answers at the model's native size, not the input's
            return pipes.inpaint, images, {"strength": strength, "width": params.width, "height": params.height}
        return pipes.image2image, [self._ov_image(inputs.image)], {"strength": strength}

    def _common_kwargs(self, params: GenerationParams, index: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "num_inference_steps": params.steps,
            "guidance_scale": params.guidance_scale,
            "num_images_per_prompt": 1,
            "generator": genai_generator(params.seed_for(index)),
        }
        if params.guidance_scale > 1.0:  # genai refuses a negative prompt it would ignore
            kwargs["negative_prompt"] = params.negative_prompt
        return kwargs

    @staticmethod
    def _ov_image(image: Image.Image) -> Any:
        import openvino as ov

        return ov.Tensor(np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8)[None]))

    @staticmethod
    def _ov_tensor(array: np.ndarray) -> Any:
        import openvino as ov

        return ov.Tensor(np.ascontiguousarray(array))

    def info(self) -> dict[str, Any]:
        """Device and compiled shapes for /health."""
        shapes = ["dynamic"] if self.device == "CPU" else [f"{w}x{h}{'' if g else ' no-cfg'}" for w, h, g in self._static]
        return {"engine": self.name, "compiled_shapes": shapes, "load_seconds": round(self.load_seconds, 3),
                "image_inputs": self.supports_image_inputs, "decoder": "tiny" if self.fast_decoder else "full"}


def _scaling_factor(model_path: Path) -> float:
    """The VAE's latent scaling factor (0.18215 for SD 1.5) from its config."""
    import json

    try:
        config = json.loads((Path(model_path) / "vae_decoder" / "config.json").read_text())
        return float(config.get("scaling_factor", 0.18215))
    except (OSError, ValueError):
        return 0.18215


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
