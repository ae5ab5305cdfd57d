"""AUTOMATIC1111's infotext: the 'parameters' text chunk other tools read from a PNG."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

from sdedge.engine.params import GenerationParams
from sdedge.loras import infotext_lora_hashes, parse_prompt
from sdedge.samplers import a1111_name


def infotext(params: GenerationParams, seed: int, model: str, model_hash: str | None = None,
             fused: Sequence[tuple[str, float]] = ()) -> str:
    """The infotext of one image of a generation, as AUTOMATIC1111 writes it.

    LoRAs given in the `loras` field (not as prompt tags) are added to the prompt as <lora:name:weight>
    tags, so the infotext pasted into A1111 or sent back here reproduces the image. `fused` are the LoRAs
    fused into the model's weights (sdedge convert --fuse-lora), written as `Fused LoRAs: "name: weight"`."""
    lines = [_prompt_with_tags(params)]
    if params.negative_prompt:
        lines.append(f"Negative prompt: {params.negative_prompt}")
    fields = {
        "Steps": params.steps,
        "Sampler": a1111_name(params.sampler),
        "CFG scale": params.guidance_scale,
        "Seed": seed,
        "Size": f"{params.width}x{params.height}",
    }
    if model_hash:
        fields["Model hash"] = model_hash  # A1111 writes the hash before the name
    fields["Model"] = model
    if params.decoder == "tiny":  # the full VAE is the usual case, left unsaid as A1111 leaves defaults
        fields["Decoder"] = "tiny"
    if params.preset:
        fields["Preset"] = params.preset
    if fused:
        fields["Fused LoRAs"] = json.dumps(", ".join(f"{name.replace(':', '').replace(',', '')}: {weight:g}"
                                                     for name, weight in fused), ensure_ascii=False)
    parts = [f"{key}: {value}" for key, value in fields.items()]
    hashes = infotext_lora_hashes((lora.name, lora.hash) for lora in params.loras if lora.hash)
    if hashes:
        parts.append(hashes)  # A1111's own field; the weights are in the prompt's <lora:name:weight> tags
    lines.append(", ".join(parts))
    return "\n".join(lines)


# A1111's own patterns (modules/infotext_utils.py): `Key: value` pairs, a value quoted when it holds commas.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def parse_infotext(text: str) -> dict[str, Any]:
    """An infotext read back the way AUTOMATIC1111's parse_generation_parameters reads it (values as strings,
    `Size` split into `Size-1` and `Size-2`, `Clip skip` defaulting to "1")."""
    *lines, last = text.strip().split("\n")
    if len(_PARAM.findall(last)) < 3:  # no parameter line: the whole text is the prompt
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for line in (line.strip() for line in lines):
        if line.startswith("Negative prompt:"):
            negative.append(line[len("Negative prompt:"):].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    parsed: dict[str, Any] = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative)}
    for key, value in _PARAM.findall(last):
        if len(value) > 1 and value[0] == value[-1] == '"':
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        size = _SIZE.match(value)
        if size:
            parsed[f"{key}-1"], parsed[f"{key}-2"] = size.group(1), size.group(2)
        else:
            parsed[key] = value
    parsed.setdefault("Clip skip", "1")
    return parsed


def _prompt_with_tags(params: GenerationParams) -> str:
    """The prompt, with a <lora:name:weight> tag for each LoRA its own tags do not name."""
    try:
        tagged = {ref.name for ref in parse_prompt(params.prompt, float("inf"))[1]}
    except ValueError:
        tagged = set()
    extra = [f"<lora:{lora.name}:{lora.weight:g}>" for lora in params.loras if lora.name not in tagged]
    return " ".join([params.prompt, *extra]) if extra else params.prompt
