"""Generation modes: from a validated request to engine parameters and stored, fitted input images.

Inputs are decoded and checked at submission (so bad images are a 4xx right away), fitted to the
output size, and stored as PNGs beside the job database: a queued job survives a restart with them.
"""

from __future__ import annotations

import uuid

from PIL import Image

from sdedge.config import Settings
from sdedge.engine import GenerationParams, ImageInputs
from sdedge.images import decode_image, default_size, fit_to_size, prepare_mask
from sdedge.schemas import GenerateRequest, InpaintRequest
from sdedge.storage import ImageStore

# Request field -> the engine's input slot.
ROLES = {"init_image": "image", "image": "image", "content_image": "image", "mask": "mask", "style_image": "style"}


def prepare(request: GenerateRequest, settings: Settings, store: ImageStore) -> tuple[GenerationParams, dict[str, str]]:
    """Engine parameters and the stored input file names (by role) for one request."""
    fields = request.image_fields()
    if not fields:
        return request.to_params(settings), {}
    decoded = {name: decode_image(name, value, settings, background="black" if name == "mask" else "white")
               for name, value in fields.items()}
    source = next(iter(decoded.values()))
    params = request.to_params(settings, default_size(source, settings))
    fitted = fit_inputs(request, decoded, source.size, params)
    token = uuid.uuid4().hex[:16]
    return params, {role: store.save(f"in-{token}-{role}", image) for role, image in fitted.items()}


def fit_inputs(request: GenerateRequest, decoded: dict[str, Image.Image], source_size: tuple[int, int],
               params: GenerationParams) -> dict[str, Image.Image]:
    """Each input at the output size; the mask aligned with the image and feathered."""
    resize_mode = str(getattr(request, "resize_mode", "crop"))
    fitted = {}
    for name, image in decoded.items():
        role = ROLES[name]
        if role == "mask" and isinstance(request, InpaintRequest):
            fitted[role] = prepare_mask(image, source_size, params.width, params.height, resize_mode,
                                        request.mask_blur, request.invert_mask)
        else:
            fitted[role] = fit_to_size(image, params.width, params.height, resize_mode)
    return fitted


def load_inputs(names: dict[str, str], store: ImageStore) -> ImageInputs:
    """The stored inputs of a job, ready for the engine."""
    return ImageInputs(**{role: store.load(name) for role, name in names.items()})


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
