"""LoRA files: listing, safe names, safetensors headers, layouts, fit checks, prompt tags, A1111 hashes.

Pure (json, hashlib, re; no torch, no runtime, no Flask). The runtime half, which turns a file into an
openvino-genai adapter, is in `sdedge.lora_adapters`.

    LoraError (ValueError)         every error names the LoRA
    ├── LoraNotFound               no such file in the LoRA folder (or the name tries to leave it)
    ├── LoraInvalid                not a readable safetensors LoRA, or a layout openvino-genai cannot use
    ├── LoraMismatch               made for another family or architecture than the model
    └── LoraSyntaxError            a malformed `<lora:...>` tag in a prompt
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "LoraError", "LoraNotFound", "LoraInvalid", "LoraMismatch", "LoraSyntaxError",
    "LoraFile", "LoraRef", "TensorInfo", "SafetensorsHeader", "LoraInfo", "ModelArch",
    "list_loras", "resolve_lora", "read_header", "inspect_lora", "model_arch", "check_fits",
    "parse_prompt", "lora_hash", "short_hash", "infotext_lora_hashes",
]

SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
               "F8_E4M3": 1, "F8_E5M2": 1}
GENAI_DTYPES = frozenset({"F32", "F16", "BF16"})  # what openvino-genai's adapter reader accepts
UNSUPPORTED_MARKERS = ("hada_w1", "hada_w2", "lokr_w1", "lokr_w2", "oft_blocks", "oft_diag", ".diff", "glora_")


class LoraError(ValueError):
    """A LoRA cannot be used; the message names it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"LoRA {name!r}: {message}")
        self.name = name


class LoraNotFound(LoraError):
    """No such LoRA file in the folder, or a name that would leave it."""


class LoraInvalid(LoraError):
    """Not a safetensors LoRA openvino-genai can read."""


class LoraMismatch(LoraError):
    """The LoRA was made for another family or architecture than the model."""


class LoraSyntaxError(LoraError):
    """A malformed `<lora:name:weight>` tag."""


@dataclass(frozen=True)
class LoraFile:
    """A `.safetensors` file in the LoRA folder; `name` is its path below the folder without the suffix."""

    name: str
    alias: str
    path: Path
    size: int


@dataclass(frozen=True)
class LoraRef:
    """One LoRA asked for by a request: its name and weight (A1111's multiplier)."""

    name: str
    weight: float = 1.0


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry in a safetensors header."""

    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """A safetensors header: tensors, free-form metadata, and where the tensor data starts."""

    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_offset: int


@dataclass(frozen=True)
class LoraInfo:
    """What a LoRA file holds, read from its header alone."""

    layout: str  # "kohya" (A1111), "peft" (diffusers), "diffusers-attn-procs", "lycoris", "unknown"
    base: str  # "sd1", "sd2", "sd" (SD UNet, other widths), "sdxl", "sd3", "flux", "unknown"
    parts: frozenset[str]  # "unet", "text_encoder", "text_encoder_2", "transformer"
    cross_attention_dim: int | None
    text_hidden_sizes: tuple[int, ...]  # input width of each text encoder the LoRA adapts
    unet_widths: frozenset[int]  # input widths of the UNet's self-attention projections
    ranks: frozenset[int]
    dtypes: frozenset[str]
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelArch:
    """The numbers of a model folder a LoRA must match (from its configs)."""

    family: str  # "sd", "sdxl", "sd3", "flux", "unknown"
    pipeline_class: str
    cross_attention_dim: int | None
    block_out_channels: tuple[int, ...]
    text_hidden_sizes: tuple[int, ...]


# -- the folder --------------------------------------------------------------------------------
def list_loras(lora_dir: Path) -> list[LoraFile]:
    """Every `.safetensors` file below lora_dir (symlinks that leave it are skipped), sorted by name."""
    root = Path(lora_dir)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.rglob("*" + SUFFIX)):
        name = path.relative_to(root).with_suffix("").as_posix()
        try:
            real = resolve_lora(root, name)
            header = read_header(real)
        except LoraError:
            continue  # unreadable or escaping files are not offered
        alias = header.metadata.get("ss_output_name") or name
        found.append(LoraFile(name=name, alias=alias, path=real, size=real.stat().st_size))
    return found


def resolve_lora(lora_dir: Path, name: str) -> Path:
    """The file a LoRA name denotes, never outside lora_dir (no `..`, absolute paths or symlinks out)."""
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise LoraNotFound(name, "not a valid LoRA name")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise LoraNotFound(name, "not a valid LoRA name")
    root = Path(lora_dir).resolve()
    candidate = root.joinpath(*parts)
    if candidate.suffix != SUFFIX:
        candidate = candidate.with_name(candidate.name + SUFFIX)
    real = candidate.resolve()
    if not real.is_relative_to(root) or not real.is_file():
        raise LoraNotFound(name, f"no such LoRA in {root}")
    return real


# -- safetensors -------------------------------------------------------------------------------
def read_header(path: Path, name: str | None = None) -> SafetensorsHeader:
    """Parse a safetensors header (8-byte little-endian length, then JSON) and check its offsets."""
    label = name or Path(path).stem
    try:
        with open(path, "rb") as handle:
            size = Path(path).stat().st_size
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise LoraInvalid(label, "file too short for a safetensors header")
            (length,) = struct.unpack("<Q", prefix)
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise LoraInvalid(label, "safetensors header length is out of range")
            raw = json.loads(handle.read(length))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoraInvalid(label, f"cannot read a safetensors header ({exc})") from exc
    if not isinstance(raw, dict):
        raise LoraInvalid(label, "safetensors header is not a JSON object")
    metadata = raw.pop("__metadata__", None) or {}
    data_size = size - 8 - length
    tensors = {}
    for key, entry in raw.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
            count = math.prod(shape) * DTYPE_BYTES[dtype]
        except (KeyError, TypeError, ValueError) as exc:
            raise LoraInvalid(label, f"bad header entry for tensor {key!r}") from exc
        if not (0 <= begin <= end <= data_size and end - begin == count):
            raise LoraInvalid(label, f"tensor {key!r} lies outside the file")
        tensors[key] = TensorInfo(dtype, shape, int(begin), int(end))
    return SafetensorsHeader(tensors, {str(k): str(v) for k, v in dict(metadata).items()}, 8 + length)


# -- what a LoRA is for ------------------------------------------------------------------------
_DOWN = re.compile(r"(.+?)[._](?:lora[._]down|lora[._]A|lora\.down)\.weight$")
_PARTS = (("lora_te1_", "text_encoder"), ("lora_te2_", "text_encoder_2"), ("lora_te_", "text_encoder"),
          ("lora_unet_", "unet"), ("lora_transformer_", "transformer"), ("text_encoder_2.", "text_encoder_2"),
          ("text_encoder.", "text_encoder"), ("unet.", "unet"), ("transformer.", "transformer"))


_SD_MARKERS = ("down_blocks", "up_blocks", "mid_block", "input_blocks", "output_blocks", "middle_block", "text_model")


def _part(module: str) -> str:
    for prefix, part in _PARTS:
        if module.startswith(prefix):
            return part
    return "unet"  # diffusers files without a prefix are UNet weights


def _layout(keys: Iterable[str]) -> str:
    keys = list(keys)
    if any(marker in key for key in keys for marker in UNSUPPORTED_MARKERS):
        return "lycoris"
    if any(".lora_down.weight" in k for k in keys) and any(k.startswith(("lora_unet_", "lora_te")) for k in keys):
        return "kohya"
    if any(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys):
        return "peft"
    if any(k.endswith(("_lora.down.weight", ".lora.down.weight")) for k in keys):
        return "diffusers-attn-procs"
    return "unknown"


def _base(keys: list[str], parts: set[str], cross: int | None) -> str:
    joined = "\n".join(keys)
    if any(s in joined for s in ("double_blocks", "single_blocks", "single_transformer_blocks")):
        return "flux"
    if "joint_blocks" in joined or "transformer" in parts:
        return "sd3"
    if not any(s in joined for s in _SD_MARKERS):
        return "unknown"
    if ("text_encoder_2" in parts or "lora_te1_" in joined or cross == 2048 or "add_embedding" in joined
            or "label_emb" in joined):
        return "sdxl"
    return {768: "sd1", 1024: "sd2"}.get(cross or 0, "sd")


def inspect_lora(path: Path, name: str | None = None) -> LoraInfo:
    """Layout, base architecture and widths of a LoRA, from its header (raises LoraInvalid)."""
    label = name or Path(path).stem
    header = read_header(path, label)
    downs = {m.group(1): info for key, info in header.tensors.items() if (m := _DOWN.match(key))}
    layout = _layout(header.tensors)
    if not downs and layout != "lycoris":
        raise LoraInvalid(label, "holds no LoRA down/up (or lora_A/lora_B) tensors")
    parts = {_part(module) for module in downs}
    cross = None
    text_sizes: dict[str, int] = {}
    unet_widths = set()
    for module, info in downs.items():
        flat = module.replace(".", "_")
        if len(info.shape) < 2:
            continue
        if re.search(r"attn2_(?:processor_)?to_[kv]$", flat):
            cross = info.shape[1]
        elif re.search(r"attn1_(?:processor_)?to_q$", flat):
            unet_widths.add(info.shape[1])
        elif flat.endswith("self_attn_q_proj") and _part(module) != "unet":
            text_sizes.setdefault(_part(module), info.shape[1])
        elif flat.endswith("self_attn_q_proj"):
            text_sizes.setdefault("text_encoder", info.shape[1])  # bare CLIP names
    keys = sorted(header.tensors)
    return LoraInfo(
        layout=layout, base=_base(keys, parts, cross), parts=frozenset(parts), cross_attention_dim=cross,
        text_hidden_sizes=tuple(text_sizes[p] for p in ("text_encoder", "text_encoder_2") if p in text_sizes),
        unet_widths=frozenset(unet_widths), ranks=frozenset(info.shape[0] for info in downs.values() if info.shape),
        dtypes=frozenset(info.dtype for info in header.tensors.values()), metadata=header.metadata)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def model_arch(model_dir: Path) -> ModelArch:
    """The family and widths of a diffusers-layout model folder (model_index.json and configs)."""
    folder = Path(model_dir)
    cls = str(_json(folder / "model_index.json").get("_class_name", ""))
    if "XL" in cls:
        family = "sdxl"
    elif cls.startswith("Flux"):
        family = "flux"
    elif "StableDiffusion3" in cls:
        family = "sd3"
    elif cls.startswith(("StableDiffusion", "LatentConsistency")):
        family = "sd"
    else:
        family = "unknown"
    unet = _json(folder / "unet" / "config.json")
    cross = unet.get("cross_attention_dim")
    cross = int(cross[0]) if isinstance(cross, list) and cross else (int(cross) if isinstance(cross, int) else None)
    hidden = tuple(int(cfg["hidden_size"]) for sub in ("text_encoder", "text_encoder_2")
                   if "hidden_size" in (cfg := _json(folder / sub / "config.json")))
    return ModelArch(family, cls, cross, tuple(int(c) for c in unet.get("block_out_channels", ())), hidden)


_FAMILY_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sd": "Stable Diffusion", "sdxl": "SDXL", "sd3": "SD3",
                 "flux": "FLUX", "unknown": "an unknown architecture"}


def check_fits(name: str, info: LoraInfo, arch: ModelArch, model: str = "the model") -> None:
    """Raise LoraInvalid or LoraMismatch (naming the LoRA, and the model as `model` says) unless it can adapt it."""
    if info.layout in ("lycoris", "unknown"):
        raise LoraInvalid(name, f"{info.layout} layout: openvino-genai reads LoRA down/up (kohya/A1111) and "
                                "lora_A/lora_B (diffusers/PEFT) tensors only")
    if not info.dtypes <= GENAI_DTYPES:
        raise LoraInvalid(name, f"tensor types {sorted(info.dtypes - GENAI_DTYPES)}: only F32, F16, BF16 load")
    family = "sd" if info.base in ("sd1", "sd2", "sd") else info.base
    if family != arch.family:
        raise LoraMismatch(name, f"made for {_FAMILY_NAMES[info.base]}, {model} is "
                                 f"{arch.pipeline_class or 'of an unknown family'}")
    if info.cross_attention_dim and arch.cross_attention_dim and info.cross_attention_dim != arch.cross_attention_dim:
        raise LoraMismatch(name, f"cross-attention width {info.cross_attention_dim} "
                                 f"({_FAMILY_NAMES[info.base]}), {model}'s is {arch.cross_attention_dim}")
    for have, want in zip(info.text_hidden_sizes, arch.text_hidden_sizes):
        if have != want:
            raise LoraMismatch(name, f"text-encoder width {have}, {model}'s is {want}")
    if arch.block_out_channels and not info.unet_widths <= set(arch.block_out_channels):
        raise LoraMismatch(name, f"UNet widths {sorted(info.unet_widths)}, {model}'s are "
                                 f"{list(arch.block_out_channels)}")


# -- prompts and infotext ----------------------------------------------------------------------
_TAG = re.compile(r"<(lora|lyco):([^<>]*)>", re.IGNORECASE)


def parse_prompt(prompt: str, max_abs_weight: float = 10.0) -> tuple[str, list[LoraRef]]:
    """Take A1111's `<lora:name:weight>` / `<lora:name>` (and `<lyco:...>`) tags out of a prompt.

    Returns the prompt the text encoder should see and the LoRAs in order of first mention; a LoRA
    named twice gets the sum of its weights (A1111 applies it twice).
    """
    weights: dict[str, float] = {}

    def take(match: re.Match[str]) -> str:
        tag, fields = match.group(0), [f.strip() for f in match.group(2).split(":")]
        name = fields[0]
        if not name or len(fields) > 3:
            raise LoraSyntaxError(name or tag, f"malformed tag {tag!r}; write <lora:name:weight>")
        try:
            values = [float(f) for f in fields[1:]] or [1.0]
        except ValueError:
            raise LoraSyntaxError(name, f"weight in {tag!r} is not a number") from None
        if len(values) == 2 and values[0] != values[1]:
            raise LoraSyntaxError(name, f"{tag!r}: separate text-encoder and UNet weights are not supported")
        if not math.isfinite(values[0]) or abs(values[0]) > max_abs_weight:
            raise LoraSyntaxError(name, f"weight {fields[1]} is outside [-{max_abs_weight:g}, {max_abs_weight:g}]")
        weights[name] = weights.get(name, 0.0) + values[0]
        return " "

    text = _TAG.sub(take, prompt)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;])", r"\1", text)  # "a cat , 8k" left where a tag stood -> "a cat, 8k"
    text = re.sub(r"(?:,\s*)+(?=,)", "", text).strip(" ,")
    return text, [LoraRef(name, weight) for name, weight in weights.items()]


@lru_cache(maxsize=256)
def _hash_cached(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + length)
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def lora_hash(path: Path) -> str:
    """A1111's LoRA hash: `sshs_model_hash` from the metadata, else sha256 of the bytes after the header."""
    header = read_header(path)
    if header.metadata.get("sshs_model_hash"):
        return header.metadata["sshs_model_hash"]
    stat = Path(path).stat()
    return _hash_cached(str(path), stat.st_mtime_ns, stat.st_size)


def short_hash(path: Path) -> str:
    """The 12 hex digits A1111 writes in infotext and matches LoRAs by."""
    return lora_hash(path)[:12]


def infotext_lora_hashes(items: Iterable[tuple[str, str]]) -> str:
    """The `Lora hashes: "name: hash, ..."` infotext field as A1111 writes it (":" and "," dropped from names)."""
    value = ", ".join(f"{name.replace(':', '').replace(',', '')}: {digest}" for name, digest in items)
    return f"Lora hashes: {json.dumps(value, ensure_ascii=False)}" if value else ""
