"""A job's input images: decoded and checked at submission (bad images are a 4xx at once), fitted to
the output size, and stored as PNGs beside the job database, so a queued job survives a restart.

A job keeps the stored file names by engine slot in `params["input_files"]`; the worker loads them
back as the engine's `ImageInputs`.
"""

from __future__ import annotations

import uuid
from typing import Any

from PIL import Image

from sdedge.config import Settings
from sdedge.engine.params import GenerationParams, ImageInputs
from sdedge.file_store import FileStore
from sdedge.generation_extras import Extras, apply
from sdedge.image_fitting import default_size, fit_to_size, prepare_mask
from sdedge.request_schemas import GenerateRequest, InpaintingRequest
from sdedge.uploads import decode_image

PARAMS_KEY = "input_files"


def prepare(request: GenerateRequest, settings: Settings, store: FileStore,
            extras: Extras | None = None) -> tuple[GenerationParams, dict[str, str]]:
    """Engine parameters (with the request's resolved preset, LoRAs and decoder) and the stored input file
    names (by engine slot)."""
    preset = extras.preset if extras else None
    fields = request.image_fields()
    if not fields:
        params = request.to_params(settings, preset=preset)
        return (apply(params, extras) if extras else params), {}
    decoded = {name: decode_image(name, value, settings, background="black" if name == "mask" else "white")
               for name, value in fields.items()}
    source = next(iter(decoded.values()))
    params = request.to_params(settings, default_size(source, settings), preset)
    params = apply(params, extras) if extras else params
    fitted = fit_inputs(request, decoded, source.size, params)
    token = uuid.uuid4().hex[:16]
    return params, {slot: store.save(f"in-{token}-{slot}", image) for slot, image in fitted.items()}


def fit_inputs(request: GenerateRequest, decoded: dict[str, Image.Image], source_size: tuple[int, int],
               params: GenerationParams) -> dict[str, Image.Image]:
    """Each input at the output size, by engine slot; the mask aligned with the image and feathered."""
    resize_mode = str(getattr(request, "resize_mode", "crop"))
    fitted = {}
    for name, image in decoded.items():
        slot = request.IMAGE_INPUTS[name]
        if slot == "mask" and isinstance(request, InpaintingRequest):
            fitted[slot] = prepare_mask(image, source_size, params.width, params.height, resize_mode,
                                        request.mask_blur, request.invert_mask)
        else:
            fitted[slot] = fit_to_size(image, params.width, params.height, resize_mode)
    return fitted


def stored_names(params: dict[str, Any]) -> dict[str, str]:
    """The stored input file names of a job, by engine slot (older jobs kept them under "inputs")."""
    names = params.get(PARAMS_KEY, params.get("inputs", {}))
    return dict(names) if isinstance(names, dict) else {}


def load(params: dict[str, Any], store: FileStore) -> ImageInputs:
    """The stored inputs of a job, ready for the engine."""
    return ImageInputs(**{slot: store.load(name) for slot, name in stored_names(params).items()})


def stored_request(body: dict[str, object], request: GenerateRequest) -> dict[str, object]:
    """What the job keeps of the client's request: everything but the (large) image payloads."""
    kept = dict(body)
    for field in request.image_fields():
        for key in list(kept):
            if key in _aliases_of(request, field):
                kept[key] = "<image>"
    return kept


def _aliases_of(request: GenerateRequest, field: str) -> set[str]:
    alias = type(request).model_fields[field].validation_alias
    choices = getattr(alias, "choices", None)
    return {field, *(str(c) for c in choices)} if choices else {field}
