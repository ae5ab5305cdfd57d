"""AUTOMATIC1111's infotext: the 'parameters' text chunk other tools read from a PNG."""

from __future__ import annotations

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
