"""The openvino-genai engine: Stable Diffusion on one InpaintingPipeline with the text-to-image and
image-to-image pipelines derived from it (the weights are shared), CPU fallback, and per-shape
static pipelines off the CPU.

The engine takes fully resolved `GenerationParams` and returns PIL images; the mode's call
(sdedge/engine/calls.py, named by the mode registry) says which pipeline runs with what. A step
callback sees every denoising step and can stop the run by returning True. Nothing the callback
raises may reach genai's C++ side: it is caught there and stops the run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sdedge.engine.calls import CallContext, PipelineCall, Pipelines, add_timings
from sdedge.engine import devices
from sdedge.engine.params import (
    GenerationOutput, GenerationParams, ImageInputs, PartialOutput, StepCallback, never_stop,
)
from sdedge.engine.step_guard import CallbackGuard
from sdedge.engine.style import VaeEncoder, adain
from sdedge.engine.tiny_previews import TinyDecoder
from sdedge.engine.lora_state import EngineLoras, LoraPolicy, encoder_prompt
from sdedge.errors import GenerationCanceled, GenerationError, InvalidRequest, map_exceptions
from sdedge.families import Family, Mode as FamilyMode, UnsupportedModel, detect_family
from sdedge.foreign_errors import RUNTIME_ERRORS
from sdedge.image_fitting import composite
from sdedge.modes import MODES, Mode
from sdedge.rng import genai_generator
from sdedge.samplers import SAMPLERS

log = logging.getLogger(__name__)


class OpenVINOEngine:
    """Stable Diffusion through openvino-genai, with CPU fallback and per-shape pipelines off CPU."""

    name = "openvino-genai"

    def __init__(self, model_path: Path, requested_device: str, *, properties: dict[str, Any] | None = None,
                 static_cache_size: int = 4, fast_decoder: bool = False, lora_dir: Path | None = None,
                 lora_cache_size: int = 8, lora_coverage: str = "all", lora_policy: LoraPolicy | None = None,
                 tiny_previews: bool = False, cpu_static: bool = False) -> None:
        import openvino_genai as ov_genai

        self._genai = ov_genai
        self.model_path = Path(model_path)
        self.requested_device = requested_device
        self._properties: dict[str, Any] = dict(properties or {})  # CACHE_DIR, threads, hint, mmap
        self._schedulers: dict[str, Any] = {}
        self._static: OrderedDict[tuple[int, int, bool, str], Pipelines] = OrderedDict()
        self._sets: dict[str, Pipelines] = {}  # CPU: one set per decoder, sharing the text encoder and UNet
        self._lock = threading.Lock()
        self.device = devices.pick_device(requested_device)
        # CPU_STATIC_SHAPES: on the CPU one compiled size at a time (the memory is the point of it)
        self._cpu_static = cpu_static and self.device == "CPU"
        self._static_cache_size = 1 if self._cpu_static else static_cache_size
        self.family = _family_or_none(self.model_path)
        self.decoders = ("full", "tiny") if self._has_tiny_decoder(fast_decoder) else ("full",)
        self.fast_decoder = fast_decoder and "tiny" in self.decoders
        # LoRA needs adapters at construction (genai refuses them per call otherwise); None: LoRA is off
        self._loras = EngineLoras(self.model_path, lora_dir, lora_cache_size, lora_coverage, lora_policy) \
            if lora_dir else None
        self._load_pipelines()
        self._vae_encoder = VaeEncoder(self.model_path, self.device, self._properties, _scaling_factor(model_path))
        # live previews decode on a compiled model of their own (sdedge/engine/tiny_previews.py), never a pipeline
        self.preview_decoder = TinyDecoder.for_model(self.model_path, self._properties) if tiny_previews else None

    # -- loading -----------------------------------------------------------------------------
    def _has_tiny_decoder(self, wanted: bool) -> bool:
        if (self.model_path / "vae_decoder_tiny" / "openvino_model.xml").is_file():
            return True
        if not wanted:
            return False
        log.warning("FAST_DECODER is on but %s has no vae_decoder_tiny/: using the full VAE "
                    "(scripts/make_tiny_vae.py converts TAESD)", self.model_path)
        return False

    def _load_pipelines(self) -> None:
        started = time.perf_counter()
        if self._static_shapes:
            try:
                self._static_pipelines(512, 512, True, self.default_decoder)
            except Exception as exc:  # noqa: BLE001 - any compile failure means "use the CPU", dynamic shapes
                log.warning("compiling for %s failed (%s); falling back to CPU", self.device, exc)
                self._static.clear()
                self.device, self._cpu_static = "CPU", False
        if not self._static_shapes:
            self._sets = self._build_shared() if "tiny" in self.decoders else \
                {"full": self._build(lambda pipe: None, lambda cls: self._construct(cls, "CPU", False))}
        self.load_seconds = time.perf_counter() - started
        log.info("model %s ready on %s in %.1f s", self.model_path, self.device, self.load_seconds)

    @property
    def _static_shapes(self) -> bool:
        """GPU/NPU always, the CPU with CPU_STATIC_SHAPES: pipelines compiled per shape."""
        return self.device != "CPU" or self._cpu_static

    @property
    def default_decoder(self) -> str:
        """The decoder of a job that names none (FAST_DECODER)."""
        return "tiny" if self.fast_decoder else "full"

    def _adapter_kwargs(self) -> dict[str, Any]:
        return self._loras.enabling() if self._loras and self._loras.ready else {}

    def _match_lora_readiness(self, params: GenerationParams) -> None:
        """Rebuild the pipelines with (or without) adapters when this job needs the other kind."""
        if self._loras is None or self._loras.wants_ready(params.loras) == self._loras.ready:
            return
        ready = not self._loras.ready
        log.info("rebuilding %s's pipelines %s", self.model_path.name, "LoRA-ready" if ready else "plain")
        self._sets.clear()  # drop the old compiled models first: never two UNets in memory at once
        self._static.clear()
        self._loras.set_ready(ready)
        try:
            self._load_pipelines()
        except Exception:
            self._loras.set_ready(not ready)  # keep serving as before; this job fails with the reason
            self._load_pipelines()
            raise

    def _build_shared(self) -> dict[str, Pipelines]:
        """CPU with the tiny autoencoder installed: a full-VAE and a tiny-VAE pipeline set built on one
        compiled text encoder and UNet (weights and LoRA state shared), so a job picks its decoder."""
        g, path = self._genai, self.model_path
        models = {**self._properties, **self._adapter_kwargs()}
        clip, unet = g.CLIPTextModel(path / "text_encoder"), g.UNet2DConditionModel(path / "unet")
        clip.compile("CPU", **models)
        unet.compile("CPU", **models)
        sets = {}
        for name, encoder, decoder in (("full", "vae_encoder", "vae_decoder"),
                                       ("tiny", "vae_encoder_tiny", "vae_decoder_tiny")):
            vae = g.AutoencoderKL(path / encoder, path / decoder) if (path / encoder).is_dir() \
                else g.AutoencoderKL(path / decoder)
            vae.compile("CPU", **self._properties)
            sets[name] = self._build(lambda pipe: None, lambda cls: self._factory(cls)(self._fresh_scheduler(), clip,
                                                                                       unet, vae))
        return sets

    def _factory(self, cls: Any) -> Any:
        """genai's assembling constructor for the model's pipeline class (LCM or Stable Diffusion)."""
        index = json.loads((self.model_path / "model_index.json").read_text())
        lcm = str(index.get("_class_name", "")).startswith("LatentConsistency")
        return cls.latent_consistency_model if lcm else cls.stable_diffusion

    def _fresh_scheduler(self) -> Any:
        return self._genai.Scheduler.from_config(self.model_path / "scheduler" / "scheduler_config.json")

    def _construct(self, cls: Any, device: str | None, tiny: bool) -> Any:
        """A pipeline of class cls from the model folder, compiled on device when given.

        With the tiny decoder, the pipeline is assembled from its parts around the tiny autoencoder
        (TAESD); its encoder and decoder go together, because genai takes the latent scaling from
        the decoder's config.
        """
        if not tiny:
            return cls(self.model_path, device, **self._properties, **self._adapter_kwargs()) if device \
                else cls(self.model_path)
        g, path = self._genai, self.model_path
        tiny_encoder = path / "vae_encoder_tiny"
        if cls is g.InpaintingPipeline and not tiny_encoder.is_dir():
            raise GenerationError("no vae_encoder_tiny beside vae_decoder_tiny")
        vae = (g.AutoencoderKL(tiny_encoder, path / "vae_decoder_tiny") if tiny_encoder.is_dir()
               else g.AutoencoderKL(path / "vae_decoder_tiny"))
        pipe = self._factory(cls)(self._fresh_scheduler(), g.CLIPTextModel(path / "text_encoder"),
                                  g.UNet2DConditionModel(path / "unet"), vae)
        if device:
            pipe.compile(device, **self._properties, **self._adapter_kwargs())
        return pipe

    def _build(self, compile_step: Callable[[Any], None], construct: Callable[[Any], Any]) -> Pipelines:
        """One InpaintingPipeline with Text2Image and Image2Image derived from it: the weights are shared."""
        try:
            inpaint = construct(self._genai.InpaintingPipeline)
        except Exception as exc:  # noqa: BLE001 - e.g. no vae_encoder: text-to-image still works
            log.warning("image inputs unavailable (%s); serving text-to-image only", exc)
            text2image = construct(self._genai.Text2ImagePipeline)
            compile_step(text2image)
            return Pipelines(text2image)
        compile_step(inpaint)
        if self.family is not None and self.family.modes == frozenset({FamilyMode.INPAINT}):
            return Pipelines(None, None, inpaint)  # a 9-channel model: genai refuses to derive the others
        return Pipelines(self._genai.Text2ImagePipeline(inpaint), self._genai.Image2ImagePipeline(inpaint), inpaint)

    def _static_pipelines(self, width: int, height: int, guided: bool, decoder: str) -> Pipelines:
        """GPU/NPU (and CPU_STATIC_SHAPES) compile per shape (and decoder), least recently used evicted."""
        key = (width, height, guided, decoder)
        if key not in self._static:
            if self._cpu_static:
                self._static.clear()  # never two compiled UNets in memory at once
            def compile_step(pipe: Any) -> None:
                pipe.reshape(1, height, width, 7.5 if guided else 1.0)
                pipe.compile(devices.compile_device(self.device), **self._properties, **self._adapter_kwargs())

            self._static[key] = self._build(compile_step, lambda cls: self._construct(cls, None, decoder == "tiny"))
            while len(self._static) > self._static_cache_size:
                self._static.popitem(last=False)
        self._static.move_to_end(key)
        return self._static[key]

    def _pipelines(self, params: GenerationParams) -> Pipelines:
        decoder = params.decoder or self.default_decoder
        if decoder not in self.decoders:
            raise GenerationError(f"the {decoder} decoder is not installed for this model "
                                  "(sdedge convert MODEL_FOLDER --tiny-autoencoder)")
        if not self._static_shapes:
            return self._sets[decoder]
        return self._static_pipelines(params.width, params.height, params.guidance_scale > 1.0, decoder)

    def close(self) -> None:
        """Drop every compiled pipeline (the pool unloads this model); the engine is unusable afterwards."""
        with self._lock:
            self._sets.clear()
            self._static.clear()
            self._schedulers.clear()
            self._vae_encoder = None  # type: ignore[assignment]
            self.preview_decoder = None

    def read_loras_from(self, lora_dir: Path) -> None:
        """Take LoRA files from lora_dir from now on (an engine handed to settings with another LORA_DIR)."""
        if self._loras is not None:
            self._loras.lora_dir = Path(lora_dir)

    def _scheduler(self, sampler: str) -> Any:
        if self.family is not None and SAMPLERS[sampler].genai_type not in (*self.family.samplers, "AUTO"):
            sampler = "auto"  # flow-matching families run only their own scheduler (docs/FAMILIES.md)
        if sampler not in self._schedulers:
            kind = getattr(self._genai.Scheduler.Type, SAMPLERS[sampler].genai_type)
            config = self.model_path / "scheduler" / "scheduler_config.json"
            self._schedulers[sampler] = self._genai.Scheduler.from_config(config, kind)
        return self._schedulers[sampler]

    @property
    def supports_image_inputs(self) -> bool:
        """True when the model has a VAE encoder, so img2img, inpainting and style transfer work."""
        sets = list(self._static.values()) if self._static_shapes else [self._sets.get("full")]
        return bool(sets) and sets[0] is not None and sets[0].inpaint is not None  # None: closed (unloaded)

    # -- generating --------------------------------------------------------------------------
    def generate(self, params: GenerationParams, on_step: StepCallback | None = None,
                 inputs: ImageInputs | None = None) -> GenerationOutput:
        """Generate params.num_images images one by one (seed+i each), stopping when on_step says so."""
        on_step = on_step or never_stop
        inputs = inputs or ImageInputs()
        spec = MODES[Mode(params.mode)]
        output = GenerationOutput([], [])
        with self._lock:  # a genai pipeline runs one generate at a time
            self._match_lora_readiness(params)
            ctx = CallContext(self._pipelines(params), self._stylize)
            if spec.stylizes:
                inputs = self._stylize(ctx.pipes, params, inputs)
            call = spec.engine_call(ctx, params, inputs)
            if call.pipe is not None:
                call.kwargs.update(self._lora_kwargs(params))
            try:
                for index in range(params.num_images):
                    try:
                        output.images.append(self._generate_one(call, params, index, on_step, output.timings))
                    except GenerationCanceled as exc:
                        exc.partial = PartialOutput(output.images, output.seeds, exc.partial, params.seed_for(index))
                        raise
                    output.seeds.append(params.seed_for(index))
            except BaseException:
                if self._loras:
                    self._loras.failed()  # re-apply the adapters in full next time
                raise
        return output

    def _lora_kwargs(self, params: GenerationParams) -> dict[str, Any]:
        """`adapters=` for every call of a LoRA-enabled engine (genai keeps the last ones otherwise)."""
        if self._loras is None:
            if any(lora.weight for lora in params.loras):
                raise InvalidRequest("LoRA is switched off on this server (LORA_ENABLED=false)")
            return {}
        return {"adapters": self._loras.config(params.loras)} if self._loras.ready else {}

    def decode_latent(self, latent: np.ndarray, params: GenerationParams) -> Image.Image:
        """A stopped run's last latent as an image (one VAE decode), as A1111 shows an interrupted image."""
        with self._lock, map_exceptions(RUNTIME_ERRORS):
            decoded = self._pipelines(params).text2image.decode(_ov_tensor(latent))
        return Image.fromarray(np.asarray(decoded.data)[0])

    def _stylize(self, pipes: Pipelines, params: GenerationParams, inputs: ImageInputs) -> ImageInputs:
        """AdaIN of the content latents towards the style's, decoded back to an init image."""
        if inputs.image is None or inputs.style is None:
            raise GenerationError("style transfer needs a content and a style image")
        content, style = self._vae_encoder.encode(inputs.image), self._vae_encoder.encode(inputs.style)
        mixed = adain(content, style, params.style_strength)
        with map_exceptions(RUNTIME_ERRORS):
            decoded = pipes.text2image.decode(_ov_tensor(mixed))
        return ImageInputs(image=Image.fromarray(np.asarray(decoded.data)[0]))

    def _generate_one(self, call: PipelineCall, params: GenerationParams, index: int, on_step: StepCallback,
                      timings: dict[str, float]) -> Image.Image:
        if call.pipe is None:  # strength 0: nothing to denoise, the input is the answer
            assert call.passthrough is not None
            return call.passthrough
        guard = CallbackGuard(on_step, index, params.num_images)
        call.pipe.set_scheduler(self._scheduler(params.sampler))
        kwargs = {**call.kwargs, **self._common_kwargs(params, index), "callback": guard}
        with map_exceptions(RUNTIME_ERRORS):
            tensor = call.pipe.generate(encoder_prompt(params.prompt), *call.images, **kwargs)
        guard.reraise()
        if guard.stopped:
            stopped = GenerationCanceled("generation canceled")
            stopped.partial = guard.latent  # generate() wraps it with the images made before
            raise stopped
        add_timings(timings, call.pipe.get_performance_metrics())  # the pipeline that ran, not always text2image
        image = Image.fromarray(np.asarray(tensor.data)[0])
        if call.keep_outside is not None:
            original, mask = call.keep_outside
            return composite(original, image, mask)  # unmasked pixels stay exactly as given
        return image

    def _common_kwargs(self, params: GenerationParams, index: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "num_inference_steps": params.steps,
            "guidance_scale": params.guidance_scale,
            "num_images_per_prompt": 1,
            "generator": genai_generator(params.seed_for(index)),
        }
        takes_negative = self.family is None or self.family.negative_prompt
        if params.guidance_scale > 1.0 and takes_negative:  # genai refuses a negative prompt it would ignore
            kwargs["negative_prompt"] = params.negative_prompt
        return kwargs

    def info(self) -> dict[str, Any]:
        """Device and compiled shapes for /health."""
        shapes = ["dynamic"] if not self._static_shapes else [f"{w}x{h}{'' if g else ' no-cfg'}{' tiny' if d == 'tiny' else ''}"
                                                           for w, h, g, d in self._static]
        return {"engine": self.name, "compiled_shapes": shapes, "load_seconds": round(self.load_seconds, 3),
                "image_inputs": self.supports_image_inputs, "decoder": self.default_decoder,
                "decoders": list(self.decoders), "lora": self._loras is not None,
                "lora_ready": bool(self._loras and self._loras.ready),
                "previews": "tiny" if self.preview_decoder else "approx"}


def _family_or_none(model_path: Path) -> Family | None:
    """The folder's family (None when it cannot be told: the engine then behaves as for SD)."""
    try:
        return detect_family(model_path)
    except UnsupportedModel:
        return None


def _ov_tensor(array: np.ndarray) -> Any:
    import openvino as ov

    return ov.Tensor(np.ascontiguousarray(array))


def _scaling_factor(model_path: Path) -> float:
    """The VAE's latent scaling factor (0.18215 for SD 1.5) from its config."""
    try:
        config = json.loads((Path(model_path) / "vae_decoder" / "config.json").read_text())
        return float(config.get("scaling_factor", 0.18215))
    except (OSError, ValueError):
        return 0.18215
