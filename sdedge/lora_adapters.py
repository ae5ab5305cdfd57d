"""LoRA files as openvino-genai adapters, with the workarounds openvino-genai 2026.4 needs.

What openvino-genai does by itself (verified on the tiny fixture, see tests/test_lora_adapters.py):
it ignores the `.alpha` tensors (scale is the weight alone, A1111 and diffusers use weight*alpha/rank),
finds no layer for diffusers/PEFT files with a `unet.`/`text_encoder.` prefix, nor for kohya
`time_emb_proj`/`conv_shortcut` names, and raises at generate() on a LoRA for a 3x3 convolution.
So each file is rewritten in memory (`prepare_lora`): names mapped to the model's own layers
(read from its IR; `map_lora`, which `sdedge.lora_fuse` shares, 3x3 convolutions included), shapes
checked, alpha/rank baked into the up matrix, 3x3 convolutions left out and reported. The pipeline is built with a *filler* adapter (rank 1, zeros) on every layer a LoRA
can adapt: LoRA then works on any layer without recompiling, and no layer's LoRA state ever becomes
empty, which in bf16 turns later images black. `LoraSelector.config` always lists the filler last and
flips its (ineffective) alpha whenever a weight changes, because genai only notices an alpha change
of the last adapter.
"""

from __future__ import annotations

import json
import re
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sdedge.loras import LoraInvalid, LoraMismatch, read_header

__all__ = ["COVERAGES", "Layer", "ModelLayers", "LoraLayer", "LoraMapping", "map_lora", "ir_layer_nodes", "layers_per_block",
           "PreparedLora", "prepare_lora", "filler_tensors", "safetensors_bytes", "read_tensors", "AdapterCache",
           "LoraSelector"]

PARTS = ("unet", "text_encoder", "text_encoder_2")


@dataclass(frozen=True)
class Layer:
    """A MatMul or Convolution of the model a LoRA can target; `path` is its diffusers module name."""

    part: str
    path: str
    out: int
    inp: int
    kernel: tuple[int, ...]


COVERAGES = ("all", "attention")


class ModelLayers:
    """The layers of a model folder's UNet and text encoders a LoRA can target, read from the IR.

    coverage "all": every linear layer and 1x1 convolution; "attention": the text encoders and the UNet's
    transformer blocks with their 1x1 projections (what kohya trains by default), less memory and time
    per step (see scripts/measure_lora_cost.py), but LoRA on resnets (LCM-LoRA, LoCon) is left out.
    """

    def __init__(self, layers: dict[str, dict[str, Layer]], layers_per_block: int = 2, coverage: str = "all") -> None:
        if coverage not in COVERAGES:
            raise ValueError(f"coverage must be one of {COVERAGES}, got {coverage!r}")
        self.parts = layers  # part -> module name with "_" for "." -> Layer
        self.layers_per_block = layers_per_block
        self.coverage = coverage

    def adaptable(self, layer: Layer) -> bool:
        """True when the pipeline gets LoRA state on this layer (never on 3x3 convolutions)."""
        if any(k > 1 for k in layer.kernel):
            return False
        return self.coverage == "all" or layer.part != "unet" or ".attentions." in layer.path

    @classmethod
    def from_model(cls, model_dir: Path, coverage: str = "all") -> ModelLayers:
        """Read unet/ and text_encoder(_2)/ openvino_model.xml (weights memory-mapped, not loaded)."""
        import openvino as ov

        core, folder, parts = ov.Core(), Path(model_dir), {}
        for part in PARTS:
            xml = folder / part / "openvino_model.xml"
            if xml.is_file():
                parts[part] = _ir_layers(part, core.read_model(str(xml)))
        return cls(parts, layers_per_block(folder), coverage)

    @property
    def te_prefixes(self) -> dict[str, str]:
        """The name prefix genai's text-encoder adapters expect (SD: lora_te, SDXL: lora_te1/lora_te2)."""
        if "text_encoder_2" in self.parts:
            return {"text_encoder": "lora_te1_", "text_encoder_2": "lora_te2_"}
        return {"text_encoder": "lora_te_"}


def layers_per_block(model_dir: Path) -> int:
    """The UNet's layers_per_block from unet/config.json (2, SD's, when absent): maps kohya SDXL block numbers."""
    try:
        value = json.loads((Path(model_dir) / "unet" / "config.json").read_text()).get("layers_per_block", 2)
    except (OSError, ValueError):
        return 2
    return int(value[0] if isinstance(value, list) else value)


def _ir_layers(part: str, model: Any) -> dict[str, Layer]:
    return {module: layer for module, (layer, _) in ir_layer_nodes(part, model).items()}


def ir_layer_nodes(part: str, model: Any) -> dict[str, tuple[Layer, Any]]:
    """Module name with "_" -> (Layer, its MatMul/Convolution node) of one part's ov.Model."""
    found = {}
    for node in model.get_ordered_ops():
        if node.get_type_name() not in ("MatMul", "Convolution"):
            continue
        shape = node.input_value(1).get_partial_shape()
        if not shape.is_static or not node.get_friendly_name().startswith("__module."):
            continue  # attention score matmuls have no weights
        dims = [d.get_length() for d in shape]
        if node.get_type_name() == "MatMul" and len(dims) == 2 and node.get_transpose_b() is False:
            dims = dims[::-1]
        path = node.get_friendly_name().split("/")[0].removeprefix("__module.")
        # optimum-intel's SDXL UNet export wraps the UNet ("model.down_blocks..."): LoRA files name the bare one
        key = path.removeprefix("model.") if part == "unet" else path
        found[key.replace(".", "_")] = (Layer(part, path, dims[0], dims[1], tuple(dims[2:])), node)
    return found


# -- safetensors in and out (numpy, no torch) --------------------------------------------------
_NP = {"F32": np.float32, "F16": np.float16}


def read_tensors(path: Path, name: str) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as float32/float16 arrays (bf16 widened to float32)."""
    header = read_header(path, name)
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=header.data_offset) if header.tensors else None
    arrays = {}
    for key, info in header.tensors.items():
        raw = np.asarray(data[info.begin:info.end]) if data is not None else np.zeros(0, np.uint8)
        if info.dtype == "BF16":
            arrays[key] = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(info.shape)
        elif info.dtype in _NP:
            arrays[key] = raw.view(_NP[info.dtype]).reshape(info.shape)
        else:
            raise LoraInvalid(name, f"tensor {key!r} is {info.dtype}; openvino-genai loads F32, F16 and BF16 only")
    return arrays


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """Serialise float arrays as a safetensors file (sorted keys, 8-byte aligned header)."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    blobs, offset = [], 0
    for key in sorted(tensors):
        array = np.ascontiguousarray(tensors[key])
        blob = array.tobytes()
        header[key] = {"dtype": names[array.dtype], "shape": list(array.shape),
                       "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs)


# -- mapping a file's names onto the model's layers --------------------------------------------
_KOHYA = re.compile(r"^(lora_unet|lora_te1|lora_te2|lora_te)_(.+?)\.(lora_down\.weight|lora_up\.weight|alpha)$")
_PART = r"^(?:(unet|text_encoder|text_encoder_2)\.)?"
_PEFT = re.compile(r"^(?:base_model\.model\.)?" + _PART[1:] + r"(.+)\.lora_(A|B|down|up)\.weight$")
_ALPHA = re.compile(_PART + r"(.+)\.alpha$")
_PROCS = re.compile(_PART + r"(.+?)(?:\.processor)?\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$")
_DIFFUSERS = re.compile(_PART + r"(.+?)\.(?:lora|lora_linear_layer)\.(down|up)\.weight$")
_KOHYA_PART = {"lora_unet": "unet", "lora_te": "text_encoder", "lora_te1": "text_encoder", "lora_te2": "text_encoder_2"}
_SGM_TAIL = (("in_layers_2", "conv1"), ("out_layers_3", "conv2"), ("emb_layers_1", "time_emb_proj"),
             ("skip_connection", "conv_shortcut"))


def _split(key: str) -> tuple[str, str, str] | None:
    """(part, module name with "_", "down"|"up"|"alpha") of one LoRA tensor key, or None."""
    if m := _KOHYA.match(key):
        kind = {"lora_down.weight": "down", "lora_up.weight": "up", "alpha": "alpha"}[m.group(3)]
        return _KOHYA_PART[m.group(1)], m.group(2), kind
    if m := _PEFT.match(key):
        return m.group(1) or "unet", m.group(2).replace(".", "_"), "down" if m.group(3) in ("A", "down") else "up"
    if m := _PROCS.match(key):
        leaf = "to_out_0" if m.group(3) == "to_out" else m.group(3)
        return m.group(1) or "unet", m.group(2).replace(".", "_") + "_" + leaf, m.group(4)
    if m := _DIFFUSERS.match(key):
        module = m.group(2).replace(".", "_")
        return m.group(1) or "unet", module + "_0" if module.endswith("to_out") else module, m.group(3)
    if m := _ALPHA.match(key):
        return m.group(1) or "unet", m.group(2).replace(".", "_"), "alpha"
    return None


def _sgm_to_diffusers(module: str, per_block: int) -> str:
    """kohya SDXL names (input_blocks_4_1_...) as diffusers names (down_blocks_1_attentions_0_...)."""
    if m := re.match(r"^input_blocks_(\d+)_(\d+)_(.+)$", module):
        index, inner, tail = int(m.group(1)), int(m.group(2)), m.group(3)
        block, layer = (index - 1) // (per_block + 1), (index - 1) % (per_block + 1)
        head = f"down_blocks_{block}_downsamplers_0" if tail == "op" else \
            f"down_blocks_{block}_{('resnets', 'attentions')[inner]}_{layer}"
        tail = "conv" if tail == "op" else tail
    elif m := re.match(r"^middle_block_(\d+)_(.+)$", module):
        heads = {"0": "mid_block_resnets_0", "1": "mid_block_attentions_0", "2": "mid_block_resnets_1"}
        head, tail = heads[m.group(1)], m.group(2)
    elif m := re.match(r"^output_blocks_(\d+)_(\d+)_(.+)$", module):
        index, inner, tail = int(m.group(1)), int(m.group(2)), m.group(3)
        block, layer = index // (per_block + 1), index % (per_block + 1)
        kind = ("resnets", "attentions", "upsamplers")[inner]
        head = f"up_blocks_{block}_{kind}_{0 if kind == 'upsamplers' else layer}"
    else:
        return module
    for old, new in _SGM_TAIL:
        tail = tail.replace(old, new)
    return f"{head}_{tail}"


@dataclass(frozen=True)
class LoraLayer:
    """One model layer a LoRA changes: delta = scale * up @ down (down flattened over the kernel)."""

    layer: Layer
    down: np.ndarray  # (rank, inp * prod(kernel)), as stored (float16 or float32)
    up: np.ndarray  # (out, rank)
    scale: float  # alpha / rank (1 without an alpha)

    def delta(self) -> np.ndarray:
        """scale * up @ down in float32, shaped like the layer's weight (out, inp, *kernel)."""
        product = self.up.astype(np.float32) @ self.down.astype(np.float32) * np.float32(self.scale)
        return product.reshape((self.layer.out, self.layer.inp) + self.layer.kernel)


@dataclass(frozen=True)
class LoraMapping:
    """A LoRA file mapped onto a model's layers (3x3 convolutions included)."""

    name: str
    layers: tuple[LoraLayer, ...]
    unmatched: tuple[str, ...]  # LoRA modules with no such layer in the model


def map_lora(path: Path, name: str, layers: ModelLayers) -> LoraMapping:
    """Each model layer a LoRA file targets with its (down, up, scale); raises LoraInvalid/LoraMismatch."""
    groups: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for key, array in read_tensors(path, name).items():
        if (split := _split(key)) is not None:
            part, module, kind = split
            groups.setdefault((part, _sgm_to_diffusers(module, layers.layers_per_block)), {})[kind] = array
    found, unmatched = [], []
    for (part, module), group in sorted(groups.items()):
        if "down" not in group and "up" not in group:
            continue  # an alpha of a layout read elsewhere (LyCORIS); inspect_lora refuses those files
        if "down" not in group or "up" not in group:
            raise LoraInvalid(name, f"module {module} has no {'up' if 'down' in group else 'down'} matrix")
        layer = layers.parts.get(part, {}).get(module)
        if layer is None:
            unmatched.append(f"{part}:{module}")
            continue
        found.append(_checked(name, layer, group))
    if not found:
        raise LoraMismatch(name, f"{len(unmatched)} modules match no layer of the model (made for another "
                                 "architecture?)") if unmatched else \
            LoraInvalid(name, "holds no LoRA down/up or lora_A/lora_B tensors")
    return LoraMapping(name, tuple(found), tuple(unmatched))


def _checked(name: str, layer: Layer, group: dict[str, np.ndarray]) -> LoraLayer:
    """The group's matrices flattened, after checking they fit the layer (LoraMismatch otherwise)."""
    down, up = group["down"], group["up"]
    rank = down.shape[0] if down.ndim else 0
    pointwise = all(k == 1 for k in layer.kernel) and all(d == 1 for d in down.shape[2:])
    kernel_ok = pointwise or tuple(down.shape[2:]) == layer.kernel
    if down.ndim < 2 or up.ndim < 2 or down.shape[1] != layer.inp or up.shape[0] != layer.out \
            or up.shape[1] != rank or not kernel_ok or any(d != 1 for d in up.shape[2:]):
        kernels = "" if kernel_ok else f", kernel {layer.kernel} in the model, {tuple(down.shape[2:])} in the LoRA"
        raise LoraMismatch(name, f"layer {layer.path} is {layer.inp}->{layer.out} in the model, the LoRA's is "
                                 f"{down.shape[1] if down.ndim > 1 else '?'}->{up.shape[0]}{kernels} (another architecture)")
    scale = float(np.asarray(group["alpha"], np.float32).reshape(-1)[0]) / rank if "alpha" in group else 1.0
    return LoraLayer(layer, down.reshape(rank, -1), up.reshape(layer.out, rank), scale)


@dataclass(frozen=True)
class PreparedLora:
    """A LoRA rewritten for openvino-genai, with what was applied and what was left out."""

    name: str
    data: np.ndarray  # safetensors bytes, kept alive for the genai Adapter that wraps them
    applied: tuple[str, ...]  # model layers the LoRA changes
    skipped: tuple[str, ...]  # layers genai cannot adapt (3x3 convolutions), left out
    unmatched: tuple[str, ...]  # LoRA modules with no such layer in the model


def prepare_lora(path: Path, name: str, layers: ModelLayers) -> PreparedLora:
    """Map a LoRA file onto the model's layers and bake alpha/rank in (raises LoraInvalid/LoraMismatch)."""
    mapping = map_lora(path, name, layers)
    out: dict[str, np.ndarray] = {}
    applied, skipped = [], []
    for item in mapping.layers:
        layer, down, up, scale = item.layer, item.down, item.up, item.scale
        if not layers.adaptable(layer):
            skipped.append(layer.path)  # genai's LoRA is a MatMul pair (no 3x3 convolution), or not covered
            continue
        dtype = np.float16 if up.dtype == np.float16 and abs(scale) <= 1.0 else np.float32
        module = layer.path.replace(".", "_")
        key = layer.path if layer.part == "unet" else layers.te_prefixes.get(layer.part, "lora_te_") + module
        out[f"{key}.lora_down.weight"] = down.astype(dtype)
        out[f"{key}.lora_up.weight"] = (up.astype(np.float32) * np.float32(scale)).astype(dtype)
        applied.append(layer.path)
    if not applied:
        raise LoraMismatch(name, "nothing genai can apply (made for another architecture?)")
    data = np.frombuffer(safetensors_bytes(out), dtype=np.uint8).copy()
    return PreparedLora(name, data, tuple(applied), tuple(skipped), mapping.unmatched)


def filler_tensors(layers: ModelLayers) -> dict[str, np.ndarray]:
    """Rank-1 zero LoRA tensors on every layer the coverage makes adaptable."""
    out = {}
    for part, table in layers.parts.items():
        for module, layer in table.items():
            if not layers.adaptable(layer):
                continue
            key = layer.path if part == "unet" else layers.te_prefixes.get(part, "lora_te_") + module
            out[f"{key}.lora_down.weight"] = np.zeros((1, layer.inp), np.float32)
            out[f"{key}.lora_up.weight"] = np.zeros((layer.out, 1), np.float32)
    return out


# -- genai objects -----------------------------------------------------------------------------
class AdapterCache:
    """genai Adapters of one model: the filler, and prepared LoRA files kept by (path, mtime, size)."""

    def __init__(self, model_dir: Path, max_entries: int = 8, coverage: str = "all") -> None:
        import openvino as ov
        import openvino_genai as ov_genai

        self._ov, self._genai = ov, ov_genai
        self.layers = ModelLayers.from_model(model_dir, coverage)
        self._filler_data = np.frombuffer(safetensors_bytes(filler_tensors(self.layers)), np.uint8).copy()
        self.filler = self._adapter(self._filler_data)
        self._entries: OrderedDict[tuple[str, int, int], tuple[Any, PreparedLora]] = OrderedDict()
        self._max = max_entries

    def _adapter(self, data: np.ndarray) -> Any:
        return self._genai.Adapter(self._ov.Tensor(data, shared_memory=True))

    def enabling_config(self) -> Any:
        """The `adapters=` to build (or compile) a pipeline with so that any LoRA can be applied later."""
        config = self._genai.AdapterConfig(self._genai.AdapterConfig.Mode.MODE_DYNAMIC)
        config.add(self.filler, 0.0)
        return config

    def clear(self) -> None:
        """Drop every prepared LoRA (the filler stays)."""
        self._entries.clear()

    def get(self, path: Path, name: str) -> tuple[Any, PreparedLora]:
        """The Adapter of a LoRA file (prepared once per file version)."""
        stat = Path(path).stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._entries:
            prepared = prepare_lora(Path(path), name, self.layers)
            self._entries[key] = (self._adapter(prepared.data), prepared)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        return self._entries[key]


class LoraSelector:
    """Builds each generate()'s `adapters=` for one pipeline set (their LoRA state is shared)."""

    def __init__(self, cache: AdapterCache) -> None:
        self._cache = cache
        self._last: tuple[tuple[int, float], ...] | None = None
        self._toggle = 0.0

    def config(self, loras: Sequence[tuple[Any, float]]) -> Any:
        """AdapterConfig of these (Adapter, weight) pairs: one adapter named twice adds up, zero weights drop out,
        the filler comes last."""
        g = self._cache._genai
        merged: dict[int, tuple[Any, float]] = {}
        for adapter, weight in loras:  # genai refuses an adapter added twice
            merged[id(adapter)] = (adapter, merged.get(id(adapter), (adapter, 0.0))[1] + float(weight))
        chosen = [(adapter, weight) for adapter, weight in merged.values() if weight != 0.0]
        state = tuple((id(adapter), weight) for adapter, weight in chosen)
        if state != self._last:
            self._toggle, self._last = 1.0 - self._toggle, state  # a changed last alpha makes genai re-read all
        config = g.AdapterConfig()
        for adapter, weight in chosen:
            config.add(adapter, weight)
        config.add(self._cache.filler, self._toggle)
        return config

    def invalidate(self) -> None:
        """Forget the applied state (after a failed generate), so the next config is re-applied in full."""
        self._last = None
