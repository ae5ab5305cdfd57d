"""Hybrid int8: a copy of an OpenVINO Stable Diffusion model folder whose UNet convolutions compute in int8
(int8 activations and int8 weights, NNCF post-training quantization), while its MatMuls keep the source's
weight-only int8. The recipe is optimum-intel's "hybrid quantization" (MatMul weights compressed,
everything else fully quantized, smooth-quant off), calibrated on denoising trajectories the model itself
computes: its text encoder embeds a few prompts, its own UNet runs a DDIM loop, and every UNet input on
the way is a calibration sample.

Why: OpenVINO's CPU plugin cannot keep weight-only int8 *convolution* weights compressed. It folds them
into f32 constants at compile time and packs a second copy for its kernels, so SD 1.5's 589 M convolution
parameters cost ~8 bytes each where it computes in f32 (AVX2-only CPUs) and ~6 in bf16. Quantized
convolutions run as int8 kernels (`jit_avx2_I8`, VNNI, AMX) on weights held once, at one byte.

Needs nncf (the `quantize` extra; no torch). UNets taking only sample, timestep, encoder_hidden_states
(and LCM's timestep_cond) are supported: SD 1.x and 2.x, SD-Turbo, LCM. Errors are ConvertError.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdedge.convert import ConvertError
from sdedge.ir_weights import dequantized, layer_weights
from sdedge.model_folders import IR_BIN, IR_XML, check_new_copy, link_tree, read_json, write_json

__all__ = ["RECORD", "Calibration", "HybridReport", "int8_activations", "quantize_hybrid_int8", "read_record"]

RECORD = "sdedge_quantized.json"
_INPUTS = {"sample", "timestep", "encoder_hidden_states", "timestep_cond"}
# varied subjects, styles and lengths, as a calibration set of captions would be
PROMPTS = (
    "a photograph of an astronaut riding a horse", "a red fox in the snow, detailed fur",
    "an oil painting of a harbour at sunset", "a bowl of ramen, studio lighting, 50mm",
    "portrait of an old man with a beard, charcoal drawing", "a futuristic city at night, neon, rain",
    "a watercolor of mountains and a lake", "a cute robot toy on a wooden desk",
    "aerial view of a forest river", "a cathedral interior with stained glass",
    "pixel art of a castle", "a vintage car on a desert road, film grain",
    "macro photo of a dew drop on a leaf", "a cat sleeping on a windowsill",
    "abstract geometric shapes in pastel colors", "a medieval knight in armor, dramatic light",
)


@dataclass(frozen=True)
class Calibration:
    """How the calibration samples are made: this many UNet inputs, at this image size, along trajectories of
    this many DDIM steps, guided with this scale (None: the family's default; 1 or less: unguided)."""

    samples: int = 32
    size: int = 512
    steps: int = 8
    guidance: float | None = None


@dataclass(frozen=True)
class HybridReport:
    """What quantize_hybrid_int8 wrote: the folder, how many convolutions compute in int8, the time taken."""

    output: Path
    convolutions: int
    matmuls_kept: int
    seconds: float
    record: dict[str, Any]


def read_record(model_dir: Path) -> dict[str, Any] | None:
    """The sdedge_quantized.json of a hybrid int8 folder, or None."""
    return read_json(Path(model_dir) / RECORD)


def int8_activations(model_dir: Path) -> bool:
    """True for a model whose UNet has int8 activations (ours, or any FakeQuantize IR such as optimum's hybrid)."""
    if read_record(model_dir) is not None:
        return True
    try:
        return b'type="FakeQuantize"' in (Path(model_dir) / "unet" / IR_XML).read_bytes()  # a few MB: weights are in .bin
    except OSError:
        return False


def quantize_hybrid_int8(model_dir: Path, output: Path, calibration: Calibration = Calibration()) -> HybridReport:
    """Write a copy of model_dir with an int8-convolution UNet (all other files hardlinked or copied)."""
    if importlib.util.find_spec("nncf") is None:
        raise ConvertError("hybrid int8 needs nncf: pip install 'sdedge[quantize]' (no torch)")
    import openvino as ov

    started = time.perf_counter()
    source, output = Path(model_dir).resolve(), Path(output).absolute()
    check_new_copy(source, output)
    _check_calibration(calibration)
    core = ov.Core()
    unet = core.read_model(str(source / "unet" / IR_XML))
    _check_inputs(unet)
    if read_record(source) is not None:
        raise ConvertError(f"{source} is already hybrid int8")
    if any(node.get_type_name() == "FakeQuantize" for node in unet.get_ordered_ops()):
        raise ConvertError(f"{source}'s UNet is quantized already (it has int8 activations)")
    guidance, guided = _guidance(source, calibration.guidance)
    samples = calibration_samples(source, core.compile_model(unet, "CPU"), calibration, guidance, guided)
    convolutions = _float_convolution_weights(unet)
    kept = _weighted_matmuls(unet)
    quantized = _quantize(unet, samples, kept)
    work = output.parent / f".{output.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        ov.save_model(quantized, str(work / "unet" / IR_XML), compress_to_fp16=False)
        link_tree(source, work, skip={RECORD, f"unet/{IR_XML}", f"unet/{IR_BIN}"})
        record = _record(source, calibration, guidance, convolutions, len(kept))
        write_json(work / RECORD, record)
        work.rename(output)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return HybridReport(output, convolutions, len(kept), time.perf_counter() - started, record)


# -- checks ----------------------------------------------------------------------------------------
def _check_calibration(calibration: Calibration) -> None:
    if not 1 <= calibration.samples <= 1000:
        raise ConvertError("--calibration-samples must be 1 to 1000")
    if calibration.size % 8 or not 64 <= calibration.size <= 2048:
        raise ConvertError("--calibration-size must be a multiple of 8 from 64 to 2048")
    if not 1 <= calibration.steps <= 100:
        raise ConvertError("--calibration-steps must be 1 to 100")


def _check_inputs(unet: Any) -> None:
    names = {next(iter(port.get_names()), "") for port in unet.inputs}
    if extra := sorted(names - _INPUTS):
        raise ConvertError(f"hybrid int8 supports SD 1.x/2.x UNets (sample, timestep, encoder_hidden_states); "
                           f"this one also takes {', '.join(extra)} (SDXL and newer families are not supported)")


def _guidance(source: Path, asked: float | None) -> tuple[float, bool]:
    """The calibration's guidance scale (asked, else the family's default) and whether it doubles the batch."""
    from sdedge.families import Guidance, UnsupportedModel, detect_family

    try:
        family = detect_family(source)
    except UnsupportedModel as exc:
        raise ConvertError(str(exc)) from exc
    scale = asked if asked is not None else family.default_guidance
    return scale, family.guidance is Guidance.CFG and scale > 1.0


# -- calibration -----------------------------------------------------------------------------------
def calibration_samples(source: Path, unet: Any, calibration: Calibration, guidance: float,
                        guided: bool) -> list[dict[str, Any]]:
    """UNet inputs along DDIM trajectories of the model itself (its text encoder, its UNet, its noise schedule);
    guided: classifier-free guidance (batch 2)."""
    import openvino_genai as genai

    clip = genai.CLIPTextModel(source / "text_encoder")
    clip.compile("CPU")
    uncond = _embed(clip, "")
    schedule = _Schedule.from_config(source / "scheduler" / "scheduler_config.json")
    shape = _latent_shape(unet, calibration.size)
    timestep_cond = _guidance_embedding(unet, guidance)
    rng = np.random.default_rng(0)
    samples: list[dict[str, Any]] = []
    for index in range(math.ceil(calibration.samples / calibration.steps)):
        cond = _embed(clip, PROMPTS[index % len(PROMPTS)])
        context = np.concatenate([uncond, cond]) if guided else cond
        latent = rng.standard_normal(shape).astype(np.float32)
        timesteps = schedule.timesteps(calibration.steps)
        for position, t in enumerate(timesteps):
            inputs = {"sample": np.concatenate([latent, latent]) if guided else latent,
                      "timestep": np.array([t], dtype=np.int64), "encoder_hidden_states": context}
            if timestep_cond is not None:
                inputs["timestep_cond"] = np.repeat(timestep_cond, len(context), axis=0)
            samples.append(inputs)
            if len(samples) == calibration.samples:
                return samples
            out = np.asarray(unet(inputs)[0])
            if guided:
                out = out[:1] + guidance * (out[1:] - out[:1])
            after = timesteps[position + 1] if position + 1 < len(timesteps) else -1
            latent = schedule.step(latent, out, t, after)
    return samples


def _embed(clip: Any, prompt: str) -> np.ndarray:
    return np.array(clip.infer(prompt, "", False).data, dtype=np.float32)


def _latent_shape(unet: Any, size: int) -> tuple[int, int, int, int]:
    channels = unet.input("sample").get_partial_shape()[1]
    return 1, channels.get_length() if channels.is_static else 4, size // 8, size // 8


def _guidance_embedding(unet: Any, guidance: float) -> np.ndarray | None:
    """LCM's timestep_cond: the sinusoidal embedding of (guidance - 1) * 1000, as diffusers computes it."""
    if "timestep_cond" not in {n for port in unet.inputs for n in port.get_names()}:
        return None
    width = unet.input("timestep_cond").get_partial_shape()[1].get_length()
    half = width // 2
    frequencies = np.exp(np.arange(half) * -(math.log(10000.0) / (half - 1)))
    angles = (guidance - 1.0) * 1000.0 * frequencies
    embedding = np.concatenate([np.sin(angles), np.cos(angles)])
    return np.pad(embedding, (0, width % 2))[None, :].astype(np.float32)


@dataclass(frozen=True)
class _Schedule:
    """The model's noise schedule (scheduler_config.json) driven as DDIM: enough to walk a trajectory."""

    alphas: np.ndarray  # cumulative products, one per training timestep
    offset: int
    prediction: str

    @classmethod
    def from_config(cls, path: Path) -> _Schedule:
        import json

        config = json.loads(path.read_text()) if path.is_file() else {}
        count = int(config.get("num_train_timesteps", 1000))
        start, end = float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012))
        if config.get("beta_schedule", "scaled_linear") == "linear":
            betas = np.linspace(start, end, count)
        else:
            betas = np.linspace(start ** 0.5, end ** 0.5, count) ** 2
        return cls(np.cumprod(1.0 - betas), int(config.get("steps_offset", 0)),
                   str(config.get("prediction_type", "epsilon")))

    def timesteps(self, steps: int) -> list[int]:
        """Leading spacing, highest first, as DDIM and PNDM space them."""
        stride = len(self.alphas) // steps
        return [min(i * stride + self.offset, len(self.alphas) - 1) for i in reversed(range(steps))]

    def step(self, latent: np.ndarray, out: np.ndarray, t: int, after: int) -> np.ndarray:
        """One deterministic DDIM step from timestep t to after (-1: the end)."""
        a, a_next = self.alphas[t], (self.alphas[after] if after >= 0 else 1.0)
        if self.prediction == "v_prediction":
            x0 = math.sqrt(a) * latent - math.sqrt(1 - a) * out
            eps = math.sqrt(a) * out + math.sqrt(1 - a) * latent
        else:
            x0 = (latent - math.sqrt(1 - a) * out) / math.sqrt(a)
            eps = out
        return (math.sqrt(a_next) * x0 + math.sqrt(1 - a_next) * eps).astype(np.float32)


# -- the graph -------------------------------------------------------------------------------------
def _float_convolution_weights(unet: Any) -> int:
    """Swap each convolution's weight-only int8 subgraph for float32 Constants NNCF can quantize; the count."""
    import openvino as ov

    count = 0
    for node in unet.get_ordered_ops():
        if node.get_type_name() not in ("Convolution", "GroupConvolution"):
            continue
        weights = layer_weights(node)
        if weights.scale is not None or weights.values.get_element_type() != ov.Type.f32:
            constant = ov.op.Constant(np.ascontiguousarray(dequantized(weights).reshape(weights_shape(node))))
            node.input(1).replace_source_output(constant.output(0))
        count += 1
    return count


def weights_shape(node: Any) -> list[int]:
    """The shape a layer's second input has (the decompression subgraph may reshape its Constant)."""
    return [int(d) for d in node.input_value(1).get_shape()]


def _weighted_matmuls(unet: Any) -> list[str]:
    """Names of MatMuls with Constant weights: they keep their weight-only int8 (optimum's hybrid recipe)."""
    names = []
    for node in unet.get_ordered_ops():
        if node.get_type_name() != "MatMul":
            continue
        try:
            layer_weights(node)
        except ConvertError:
            continue  # activations on both sides (attention): quantized
        names.append(node.get_friendly_name())
    return names


def _quantize(unet: Any, samples: list[dict[str, Any]], kept: list[str]) -> Any:
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    # 7-bit weights: int8 kernels without VNNI (AVX2, AVX-512 before VNNI) add u8 x i8 product pairs in
    # saturating int16, which 8-bit weights can overflow; VNNI and AMX lose one bit of weight precision
    advanced = AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE)
    advanced.smooth_quant_alphas.matmul = -1
    logging.getLogger("nncf").setLevel(logging.WARNING)  # its INFO lists every MatMul kept; the bars stay
    return nncf.quantize(unet, nncf.Dataset(samples), preset=nncf.QuantizationPreset.MIXED,
                         model_type=nncf.ModelType.TRANSFORMER, subset_size=len(samples),
                         ignored_scope=nncf.IgnoredScope(names=kept, validate=False), advanced_parameters=advanced)


def _record(source: Path, calibration: Calibration, guidance: float, convolutions: int, kept: int) -> dict[str, Any]:
    from importlib.metadata import version

    from sdedge import __version__

    return {"method": "hybrid-int8", "source": str(source), "convolutions_int8": convolutions,
            "matmuls_weight_only": kept, "calibration": {"samples": calibration.samples, "size": calibration.size,
                                                        "steps": calibration.steps, "guidance": guidance},
            "overflow_fix": "enable", "nncf_version": version("nncf"), "sdedge_version": __version__}
