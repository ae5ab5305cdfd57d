"""AUTOMATIC1111's infotext: the 'parameters' text chunk other tools read from a PNG."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from sdedge.engine.params import GenerationParams
from sdedge.samplers import a1111_name


def infotext(params: GenerationParams, seed: int, model: str) -> str:
    """The infotext of one image of a generation, as AUTOMATIC1111 writes it."""
    lines = [params.prompt]
    if params.negative_prompt:
        lines.append(f"Negative prompt: {params.negative_prompt}")
    fields = {
        "Steps": params.steps,
        "Sampler": a1111_name(params.sampler),
        "CFG scale": params.guidance_scale,
        "Seed": seed,
        "Size": f"{params.width}x{params.height}",
        "Model": model,
    }
    lines.append(", ".join(f"{key}: {value}" for key, value in fields.items()))
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
