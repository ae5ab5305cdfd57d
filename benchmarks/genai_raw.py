"""Raw openvino-genai in the benchmark's own process: the reference every ratio is taken against."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import SCHEDULERS, TINY_DECODER, ContenderSettings, Run, Workload
from sdedge.rng import genai_generator


class RawGenai:
    """`Text2ImagePipeline.generate` called directly, with the same decoder and properties as the server.

    With `lora`, the pipeline is built with that adapter enabled (genai's dynamic LoRA) and every call
    passes it again, as a server would per request; `run(work, lora=other)` switches adapters.
    """

    def __init__(self, model: Path, settings: ContenderSettings | None = None, lora: Path | None = None,
                 lora_alpha: float = 1.0) -> None:
        import openvino_genai as ov_genai

        self._g, self.model, self.settings = ov_genai, model, settings or ContenderSettings()
        self._schedulers: dict[str, Any] = {}
        self._sampler = ""
        properties = dict(self.settings.ov_properties)
        self.adapters: Any = None
        if lora is not None:
            self.adapters = self.adapter_config(lora, lora_alpha)
            properties["adapters"] = self.adapters
        started = time.perf_counter()
        if self.settings.decoder == "tiny":
            self.pipe = self._assembled()
            self.pipe.compile("CPU", **properties)
        else:
            self.pipe = ov_genai.Text2ImagePipeline(str(model), "CPU", **properties)
        self.load_seconds = time.perf_counter() - started

    def _assembled(self) -> Any:
        """The pipeline built from its parts around the tiny decoder, as sdedge's engine does."""
        g, path = self._g, self.model
        return g.Text2ImagePipeline.stable_diffusion(
            g.Scheduler.from_config(str(path / "scheduler" / "scheduler_config.json")),
            g.CLIPTextModel(str(path / "text_encoder")), g.UNet2DConditionModel(str(path / "unet")),
            g.AutoencoderKL(str(path / TINY_DECODER)))

    def adapter_config(self, lora: Path, alpha: float = 1.0) -> Any:
        """An AdapterConfig holding one LoRA file at weight `alpha`."""
        config = self._g.AdapterConfig()
        config.add(self._g.Adapter(str(lora)), alpha)
        return config

    def _use_sampler(self, sampler: str) -> None:
        if sampler == self._sampler:
            return
        if sampler not in self._schedulers:
            config = self.model / "scheduler" / "scheduler_config.json"
            kind = getattr(self._g.Scheduler.Type, SCHEDULERS[sampler][0])
            self._schedulers[sampler] = self._g.Scheduler.from_config(str(config), kind)
        self.pipe.set_scheduler(self._schedulers[sampler])
        self._sampler = sampler

    def run(self, work: Workload, adapters: Any = None) -> Run:
        """Generate once; stage timings come from genai's performance metrics."""
        self._use_sampler(work.sampler)
        kwargs: dict[str, Any] = {}
        if work.guided:  # genai refuses a negative prompt it would not use
            kwargs["negative_prompt"] = work.negative_prompt
        if adapters is not None or self.adapters is not None:
            kwargs["adapters"] = adapters if adapters is not None else self.adapters
        started = time.perf_counter()
        self.pipe.generate(work.prompt, width=work.width, height=work.height, num_inference_steps=work.steps,
                           guidance_scale=work.guidance_scale, num_images_per_prompt=1,
                           generator=genai_generator(work.seed), **kwargs)
        seconds = time.perf_counter() - started
        return Run(seconds, genai_stages(self.pipe.get_performance_metrics()))


def genai_stages(metrics: Any) -> dict[str, float]:
    """Text encoder, UNet per call (median and mean), UNet calls, VAE decode and generate, in ms."""
    unet_calls = [d / 1000 for d in metrics.raw_metrics.unet_inference_durations]  # microseconds
    encoder = metrics.get_text_encoder_infer_duration()
    return {
        "text_encoder_ms": float(sum(encoder.values()) if isinstance(encoder, dict) else encoder),
        "unet_step_ms": float(statistics.median(unet_calls)) if unet_calls else 0.0,
        "unet_mean_ms": float(statistics.fmean(unet_calls)) if unet_calls else 0.0,
        "unet_calls": float(len(unet_calls)),
        "unet_total_ms": float(sum(unet_calls)),
        "vae_decoder_ms": float(metrics.get_vae_decoder_infer_duration()),
        "generate_ms": float(metrics.get_generate_duration()),
    }
