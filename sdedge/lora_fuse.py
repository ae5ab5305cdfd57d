"""Fuse LoRA files into an OpenVINO model folder's weights: W + weight * alpha/rank * up @ down.

openvino-genai's dynamic LoRA costs every UNet step ~1.5x, even with the LoRA off, and 2026.4 refuses
LoRA on 3x3 convolutions (LCM-LoRA's resnets). A fused copy of the model has neither limit: its
weights already hold the LoRA, for linear layers, 1x1 and 3x3 convolutions alike. numpy and the
openvino Python API only (no torch): the layer mapping is `lora_adapters.map_lora`'s, shared with
the per-request path. int8 weights (NNCF's u8 + zero point + f16 scale per output channel, or i8
symmetric) are dequantized, changed and requantized with the same scheme, per output channel; layers
a LoRA does not change (or changes with weight 0) keep their bytes; unchanged weight files are hardlinked.
An LCM-LoRA fused into SD 1.x makes an LCM model (LatentConsistencyModelPipeline + LCMScheduler), so
the presets give it 4 steps at guidance 1 by themselves. `sdedge_fused.json` records what was fused.

Errors: LoraNotFound / LoraInvalid / LoraMismatch (sdedge.loras) name the LoRA; ConvertError
(sdedge.convert) for the folders and weight formats.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdedge.convert import ConvertError
from sdedge.families import FamilyId, UnsupportedModel, detect_family
from sdedge.lora_adapters import (PARTS, LoraLayer, LoraMapping, ModelLayers, ir_layer_nodes, layers_per_block,
                                  map_lora)
from sdedge.ir_weights import dequantized, layer_weights
from sdedge.model_folders import IR_BIN, IR_XML, check_new_copy, link_tree, read_json, write_json
from sdedge.loras import SUFFIX, check_fits, inspect_lora, model_arch, resolve_lora, short_hash
from sdedge.presets import is_lcm_lora, lcm_lora_family

__all__ = ["RECORD", "FuseSource", "FuseReport", "fuse_loras", "parse_spec", "read_record", "fused_loras"]

RECORD = "sdedge_fused.json"
# diffusers' LCMScheduler defaults; the model's own scheduler values win where both have the key
_LCM_SCHEDULER: dict[str, Any] = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "trained_betas": None, "original_inference_steps": 50, "clip_sample": False, "clip_sample_range": 1.0,
    "set_alpha_to_one": True, "steps_offset": 0, "prediction_type": "epsilon", "thresholding": False,
    "dynamic_thresholding_ratio": 0.995, "sample_max_value": 1.0, "timestep_spacing": "leading",
    "timestep_scaling": 10.0, "rescale_betas_zero_snr": False,
}


@dataclass(frozen=True)
class FuseSource:
    """One LoRA to fuse: its name (for the record), file and weight."""

    name: str
    path: Path
    weight: float = 1.0


@dataclass(frozen=True)
class FuseReport:
    """What fuse_loras wrote: the folder, the changed layers (3x3 convolutions among them), LCM or not."""

    output: Path
    layers: int
    conv3x3: int
    parts: tuple[str, ...]
    lcm: bool
    record: dict[str, Any]


def parse_spec(spec: str, lora_dir: Path) -> FuseSource:
    """`NAME_OR_PATH[:WEIGHT]`: a name resolves in lora_dir (never outside it), a path to a .safetensors file as given."""
    target, weight = spec, 1.0
    head, sep, tail = spec.rpartition(":")
    if sep and head:
        try:
            weight = float(tail)
            target = head
        except ValueError:
            pass  # a colon in the name itself
    if not np.isfinite(weight):
        raise ConvertError(f"--fuse-lora {spec}: the weight must be a finite number")
    path = Path(target).expanduser()
    if target.endswith(SUFFIX) and path.is_file():
        return FuseSource(path.stem, path.resolve(), weight)
    return FuseSource(target.removesuffix(SUFFIX), resolve_lora(lora_dir, target.removesuffix(SUFFIX)), weight)


def read_record(model_dir: Path) -> dict[str, Any] | None:
    """The `sdedge_fused.json` of a model folder, or None when it holds no fused LoRA."""
    return read_json(Path(model_dir) / RECORD)


def fused_loras(model_dir: Path) -> list[dict[str, Any]]:
    """The LoRAs fused into a model folder, earliest fusion first: name, hash, weight (for /models, infotext)."""
    found: list[dict[str, Any]] = []
    record = read_record(model_dir)
    while isinstance(record, dict):
        found[:0] = [{"name": str(item.get("name")), "hash": item.get("hash"), "weight": item.get("weight")}
                     for item in record.get("loras", []) if isinstance(item, dict)]
        record = record.get("base")
    return found


def fuse_loras(model_dir: Path, output: Path, loras: Sequence[FuseSource], lcm: bool | None = None) -> FuseReport:
    """Write a copy of model_dir with the LoRAs fused into UNet and text-encoder weights (lcm None: auto)."""
    import openvino as ov

    source, output = Path(model_dir).resolve(), Path(output).absolute()
    check_new_copy(source, output)
    if not loras:
        raise ConvertError("give at least one LoRA to fuse")
    family = _family(source)
    lcm = _want_lcm(family, loras, lcm)
    arch = model_arch(source)
    for lora in loras:
        check_fits(lora.name, inspect_lora(lora.path, lora.name), arch)
    core, models, nodes = ov.Core(), {}, {}
    for part in PARTS:
        if (source / part / IR_XML).is_file():
            models[part] = core.read_model(str(source / part / IR_XML))
            nodes[part] = ir_layer_nodes(part, models[part])
    layers = ModelLayers({part: {k: layer for k, (layer, _) in table.items()} for part, table in nodes.items()},
                         layers_per_block(source))
    mappings = [(lora, map_lora(lora.path, lora.name, layers)) for lora in loras]
    work = output.parent / f".{output.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        changed, conv3x3, parts = 0, 0, []
        for part, model in models.items():
            edits = _edits(part, mappings)
            done = [_fuse_layer(nodes[part][module][1], items) for module, items in sorted(edits.items())]
            if any(done):
                parts.append(part)
                changed += sum(done)
                conv3x3 += sum(1 for module, ok in zip(sorted(edits), done)
                               if ok and any(k > 1 for k in nodes[part][module][0].kernel))
                model.set_rt_info(", ".join(f"{lora.name}:{lora.weight:g}" for lora in loras), ["sdedge", "fused_loras"])
                ov.save_model(model, str(work / part / IR_XML), compress_to_fp16=_fp16_compressed(model))
        link_tree(source, work, skip={RECORD, *(f"{part}/{name}" for part in parts for name in (IR_XML, IR_BIN))})
        if lcm:
            _make_lcm(work)
        record = _record(source, mappings, lcm, changed, conv3x3)
        write_json(work / RECORD, record)
        work.rename(output)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return FuseReport(output, changed, conv3x3, tuple(parts), lcm, record)


def _family(source: Path) -> Any:
    try:
        return detect_family(source)
    except UnsupportedModel as exc:
        raise ConvertError(str(exc)) from exc


def _want_lcm(family: Any, loras: Sequence[FuseSource], lcm: bool | None) -> bool:
    """Explicit choice, else on for an LCM-LoRA (by name) fused into SD 1.x; an LCM model stays one."""
    if family.id is FamilyId.LCM:
        return False  # already an LCM model: nothing to switch
    sd1 = lcm_lora_family(family) == "sd"
    if lcm and not sd1:
        raise ConvertError(f"--lcm makes an SD 1.x model an LCM model; this one is {family.name}")
    if lcm is None:
        return sd1 and any(lora.weight != 0 and is_lcm_lora(lora.name, "sd") for lora in loras)
    return lcm


def _edits(part: str, mappings: Sequence[tuple[FuseSource, LoraMapping]]) -> dict[str, list[tuple[LoraLayer, float]]]:
    """module -> the (LoRA layer, weight) pairs that change it (weight 0 leaves a layer alone)."""
    edits: dict[str, list[tuple[LoraLayer, float]]] = {}
    for lora, mapping in mappings:
        for item in mapping.layers:
            if item.layer.part == part and lora.weight != 0:
                edits.setdefault(item.layer.path.replace(".", "_"), []).append((item, lora.weight))
    return edits


# -- one layer's weights ---------------------------------------------------------------------------
def _fuse_layer(layer_node: Any, items: list[tuple[LoraLayer, float]]) -> bool:
    """Add the LoRA deltas to one layer's weights in the graph; False when they sum to nothing."""
    delta = sum(item.delta() * np.float32(weight) for item, weight in items)
    if not isinstance(delta, np.ndarray) or not np.any(delta):
        return False
    found = layer_weights(layer_node)
    stored = found.values.get_data()
    if delta.shape != stored.shape:
        delta = delta.T if delta.ndim == 2 and delta.T.shape == stored.shape else delta.reshape(stored.shape)
    if found.scale is None:
        _replace(found.values, (stored.astype(np.float32) + delta).astype(stored.dtype))
        return True
    scale = found.scale.get_data()
    zero = found.zero.get_data() if found.zero is not None else None
    base = dequantized(found)
    values, new_zero, new_scale = _quantize(base.astype(scale.dtype).astype(np.float32) + delta, stored.dtype,
                                            scale.shape, scale.dtype, zero is not None)
    _replace(found.values, values)
    _replace(found.scale, new_scale)
    if found.zero is not None and new_zero is not None:
        _replace(found.zero, new_zero.astype(zero.dtype if zero is not None else np.uint8))
    return True


def _quantize(w: np.ndarray, dtype: np.dtype, scale_shape: tuple[int, ...], scale_dtype: np.dtype,
              asymmetric: bool) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """NNCF's int8 scheme over the axes the scale spans once: u8 asymmetric (zero point) or i8 symmetric."""
    if len(scale_shape) == w.ndim:
        axes = tuple(i for i in range(w.ndim) if scale_shape[i] == 1 and w.shape[i] != 1)
    else:
        axes = tuple(range(w.ndim))  # one scale for the tensor
    info = np.iinfo(dtype)
    if asymmetric:
        low = np.minimum(w.min(axis=axes, keepdims=True), 0.0)  # 0 stays representable: no clipping at the ends
        high = np.maximum(w.max(axis=axes, keepdims=True), 0.0)
        scale = ((high - low) / float(info.max - info.min)).astype(scale_dtype)
        scale = np.where(scale == 0, np.asarray(np.finfo(scale_dtype).eps, scale_dtype), scale)
        zero = np.clip(info.min - np.round(low / scale.astype(np.float32)), info.min, info.max)
        values = np.clip(np.round(w / scale.astype(np.float32)) + zero, info.min, info.max).astype(dtype)
        return values, zero.astype(dtype).reshape(scale_shape), scale.reshape(scale_shape)
    scale = (np.abs(w).max(axis=axes, keepdims=True) / float(info.max)).astype(scale_dtype)
    scale = np.where(scale == 0, np.asarray(np.finfo(scale_dtype).eps, scale_dtype), scale)
    values = np.clip(np.round(w / scale.astype(np.float32)), info.min, info.max).astype(dtype)
    return values, None, scale.reshape(scale_shape)


def _replace(old: Any, array: np.ndarray) -> None:
    """Swap a Constant for one holding array (same name, same type and shape)."""
    import openvino as ov

    new = ov.op.Constant(np.ascontiguousarray(array))
    new.set_friendly_name(old.get_friendly_name())
    old.output(0).replace(new.output(0))


def _fp16_compressed(model: Any) -> bool:
    """True for an IR saved with compress_to_fp16 (no large f32 Constant left, f16 ones present)."""
    import openvino as ov

    kinds: dict[Any, int] = {}
    for node in model.get_ordered_ops():
        if node.get_type_name() == "Constant" and node.get_element_type() in (ov.Type.f32, ov.Type.f16):
            size = int(np.prod(node.get_shape()))
            kinds[node.get_element_type()] = max(kinds.get(node.get_element_type(), 0), size)
    return kinds.get(ov.Type.f32, 0) <= 16 and ov.Type.f16 in kinds


# -- the rest of the folder ------------------------------------------------------------------------
def _make_lcm(folder: Path) -> None:
    """model_index.json's class LatentConsistencyModelPipeline and an LCMScheduler config from the model's own."""
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = "LatentConsistencyModelPipeline"
    index["scheduler"] = ["diffusers", "LCMScheduler"]
    write_json(folder / "model_index.json", index)
    config_path = folder / "scheduler" / "scheduler_config.json"
    old = json.loads(config_path.read_text()) if config_path.is_file() else {}
    config = {"_class_name": "LCMScheduler", "_diffusers_version": old.get("_diffusers_version", "0.27.0"),
              **{key: old.get(key, value) for key, value in _LCM_SCHEDULER.items()}}
    config_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(config_path, config)


def _record(source: Path, mappings: Sequence[tuple[FuseSource, LoraMapping]], lcm: bool, layers: int,
            conv3x3: int) -> dict[str, Any]:
    """What `sdedge_fused.json` says: the source model, each LoRA (name, file, hash, weight), LCM or not."""
    from sdedge import __version__

    loras = [{"name": lora.name, "file": lora.path.name, "hash": short_hash(lora.path), "weight": lora.weight,
              "layers": len(mapping.layers), "unmatched": len(mapping.unmatched)} for lora, mapping in mappings]
    record: dict[str, Any] = {"source": str(source), "loras": loras, "lcm": lcm, "layers_changed": layers,
                              "conv3x3_changed": conv3x3, "sdedge_version": __version__}
    if (previous := read_record(source)) is not None:
        record["base"] = previous  # fused onto an already fused model
    return record
