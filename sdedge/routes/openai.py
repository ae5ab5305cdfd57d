"""OpenAI-compatible image API under /v1: generations, edits (img2img or inpainting), variations
(image-to-image without a prompt, at VARIATION_STRENGTH unless `strength` says otherwise) and models.

Errors on these routes use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, through
blueprint-level handlers; the rest of the app keeps sdedge's own shape.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Literal
from urllib.parse import urljoin

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.datastructures import FileStorage

from sdedge.auth import caller
from sdedge.errors import InvalidRequest, NotFound, SdedgeError, UnsupportedMediaType, error_for
from sdedge.image_fitting import within_limits
from sdedge.job_store import Job, JobStatus
from sdedge.openapi_spec import documented
from sdedge.routes.http_input import json_body
from sdedge.service import GenerationService
from sdedge.services import Services, services
from sdedge.uploads import decode_mask, image_size, png_bytes

bp = Blueprint("openai", __name__, url_prefix="/v1")

# A failed, canceled or timed-out job: retrying repeats the work (a 429 or 503 is worth retrying).
NO_RETRY_STATUSES = {409, 500, 504}
# Our field names in validation errors -> the OpenAI parameter the client sent.
PARAM_NAMES = {"num_images": "n", "width": "size", "height": "size", "init_image": "image",
               "num_inference_steps": "num_inference_steps", "sampler": "sampler"}


class OpenAIErrorBody(BaseModel):
    """The inside of OpenAI's error response."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    """OpenAI's error shape, used on every /v1 route."""

    error: OpenAIErrorBody


class ImageGenerationRequest(BaseModel):
    """POST /v1/images/generations; OpenAI fields we cannot honour (quality, style...) are ignored."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    prompt: str = Field(..., min_length=1)
    model: str | None = Field(None, description="A model id of GET /v1/models; dall-e-* and none: the default model; "
                                              "unknown: 400 listing the available ones.")
    n: int | None = Field(1, ge=1, description="Images to generate, at most MAX_IMAGES (null: 1).")
    size: str | None = Field(None, pattern=r"^(auto|[0-9]{1,5}[xX][0-9]{1,5})$",
                             description="'WIDTHxHEIGHT' (multiples of 8) or 'auto' (DEFAULT_SIZE).")
    response_format: Literal["b64_json", "url"] | None = Field(None, description="Default b64_json.")
    negative_prompt: str | None = None
    num_inference_steps: int | None = Field(None, ge=1)
    guidance_scale: float | None = Field(None, ge=0, le=30)
    seed: int | None = Field(None, description="Same seed, same image (rng_seed is an alias).")
    rng_seed: int | None = Field(None, description="OpenVINO Model Server's name for seed.")
    sampler: str | None = Field(None, description="One of GET /samplers.")
    # sdedge's extra fields (the openai client sends them with extra_body=...)
    preset: Literal["fast", "balanced", "quality"] | None = Field(
        None, description="sdedge extra: the model family's speed preset (GET /presets); explicit "
                          "num_inference_steps, guidance_scale and sampler win.")
    decoder: Literal["full", "tiny"] | None = Field(None, description="sdedge extra: full VAE or tiny autoencoder.")
    loras: list[dict[str, Any]] | str | None = Field(
        None, description='sdedge extra: [{"name", "weight"}] (in a multipart edit: that list as JSON text); '
                          "<lora:name:weight> in the prompt works too.")


class ImageEditForm(ImageGenerationRequest):
    """POST /v1/images/edits (multipart): a mask makes it inpainting, without one it is image-to-image."""

    image: bytes = Field(..., description="PNG, JPEG or WebP (`image[]` also accepted; the first is used).")
    mask: bytes | None = Field(None, description="PNG whose fully transparent areas are repainted (OpenAI's "
                                                 "convention); a mask without transparency: white is repainted.")
    strength: float | None = Field(None, ge=0, le=1, description="How far to move from the image (0..1).")


VARIATION_STRENGTH = 0.6  # keeps the upload's layout and colours while visibly redrawing it


class ImageVariationForm(ImageGenerationRequest):
    """POST /v1/images/variations (multipart): image-to-image of the upload; no prompt needed."""

    prompt: str = Field("", description="Optional (OpenAI's variations take none): steers the redraw.")
    image: bytes = Field(..., description="PNG, JPEG or WebP.")
    strength: float = Field(VARIATION_STRENGTH, ge=0, le=1,
                            description=f"How far each variation moves from the image (default {VARIATION_STRENGTH}).")


class ImageData(BaseModel):
    """One image of the answer: base64 PNG or URL."""

    b64_json: str | None = None
    url: str | None = None


class ImagesResponse(BaseModel):
    """The answer of generations and edits."""

    created: int
    data: list[ImageData]
    output_format: str = "png"
    size: str


class ModelCard(BaseModel):
    """One model in OpenAI's listing."""

    id: str
    object: str = "model"
    created: int
    owned_by: str = "sdedge"


class ModelList(BaseModel):
    """GET /v1/models."""

    object: str = "list"
    data: list[ModelCard]


# -- errors -------------------------------------------------------------------------------------
def openai_error(error: SdedgeError) -> Response:
    """Render one of our errors in OpenAI's shape, keeping the status and headers."""
    kind = "server_error" if error.status_code >= 500 else "invalid_request_error"
    if error.status_code == 429:
        kind = "rate_limit_error"
    body = OpenAIErrorBody(message=error.message, type=kind, param=_param(error.details), code=error.code)
    response = jsonify(OpenAIErrorResponse(error=body).model_dump())
    response.status_code = error.status_code
    response.headers.update(error.headers)
    if error.status_code in NO_RETRY_STATUSES:  # the openai client would otherwise resubmit the job twice
        response.headers["x-should-retry"] = "false"
    return response


def _param(details: Any) -> str | None:
    """The request field an error is about, under the name the OpenAI client used."""
    first = details[0] if isinstance(details, list) and details else details
    field = first.get("field") if isinstance(first, dict) else None
    return PARAM_NAMES.get(field, field) if isinstance(field, str) else None


# -- routes -------------------------------------------------------------------------------------
@bp.post("/images/generations")
@documented(request=ImageGenerationRequest, responses={200: ImagesResponse}, error=OpenAIErrorResponse)
def generations() -> Response:
    """Text to image, OpenAI style; blocks until the images are ready."""
    req = ImageGenerationRequest.model_validate(json_body())
    width, height = parse_size(req.size)
    return _run("text2img", req, _native_body(req, width, height))


@bp.post("/images/edits")
@documented(request=ImageEditForm, request_content=("multipart/form-data",), responses={200: ImagesResponse},
            error=OpenAIErrorResponse)
def edits() -> Response:
    """Edit an image: inpainting with a mask, image-to-image without; blocks until ready."""
    req = _edit_form()
    settings = services().settings
    size = image_size("image", req.image, settings)
    width, height = parse_size(req.size) if req.size not in (None, "auto") else within_limits(size, settings)
    body = _native_body(req, width, height)
    if req.strength is not None:
        body["strength"] = req.strength
    if req.mask is None:
        return _run("img2img", req, body, {"init_image": req.image})
    mask = decode_mask("mask", req.mask, settings, "transparent")  # OpenAI: transparent pixels are edited
    if mask.size != size:
        message = f"mask is {mask.size[0]}x{mask.size[1]} but image is {size[0]}x{size[1]}; they must match"
        raise InvalidRequest(message, [{"field": "mask", "message": message, "type": "size"}])
    return _run("inpaint", req, body, {"image": req.image, "mask": png_bytes(mask)})


@bp.post("/images/variations")
@documented(request=ImageVariationForm, request_content=("multipart/form-data",), responses={200: ImagesResponse},
            error=OpenAIErrorResponse)
def variations() -> Response:
    """Variations of an image: image-to-image at VARIATION_STRENGTH (0.6), seed+i for each of n; blocks until ready."""
    req = ImageVariationForm.model_validate(_form_with_files(("image", "image[]")))
    settings = services().settings
    size = image_size("image", req.image, settings)
    width, height = parse_size(req.size) if req.size not in (None, "auto") else within_limits(size, settings)
    body = {**_native_body(req, width, height), "strength": req.strength}
    return _run("img2img", req, body, {"init_image": req.image})


@bp.get("/models")
@documented(responses={200: ModelList}, error=OpenAIErrorResponse)
def list_models() -> Response:
    """The installed models (the default first): the ones a request can name."""
    return jsonify(ModelList(data=_model_cards(services())).model_dump())


@bp.get("/models/<model_id>")
@documented(responses={200: ModelCard}, error=OpenAIErrorResponse)
def get_model(model_id: str) -> Response:
    """One model by id."""
    cards = {card.id: card for card in _model_cards(services())}
    if model_id not in cards:
        raise NotFound(f"the model {model_id!r} does not exist; available: {', '.join(cards)}", [{"field": "model"}])
    return jsonify(cards[model_id].model_dump())


def _model_cards(svc: Services) -> list[ModelCard]:
    models = sorted((m for m in svc.loader.library.models() if m.installed), key=lambda m: not m.is_default)
    return [ModelCard(id=m.id, created=int(svc.started_at)) for m in models]


# -- helpers ------------------------------------------------------------------------------------
def parse_size(size: str | None) -> tuple[int | None, int | None]:
    """'512x768' -> (512, 768); None or 'auto' -> server defaults; anything else is a 400 on size."""
    if size in (None, "auto"):
        return None, None
    parts = size.lower().split("x")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise InvalidRequest(f"size must be 'WIDTHxHEIGHT' such as '512x512', got {size!r}", [{"field": "size"}])
    return int(parts[0]), int(parts[1])


def _edit_form() -> ImageEditForm:
    """The multipart body as an ImageEditForm."""
    return ImageEditForm.model_validate(_form_with_files(("image", "image[]"), ("mask",)))


def _form_with_files(*files: tuple[str, ...]) -> dict[str, Any]:
    """The multipart form's fields plus, for each group of names, the first file found under them."""
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with an image file")
    fields: dict[str, Any] = request.form.to_dict()
    for names in files:
        found = _first_file(*names)
        if found is not None:
            fields[names[0]] = found.read()
    return fields


def _first_file(*names: str) -> FileStorage | None:
    for name in names:
        if name in request.files:
            return request.files.getlist(name)[0]
    return None


def _b64(data: bytes) -> str:
    """Bytes as base64 text."""
    return base64.b64encode(data).decode()


def _native_body(req: ImageGenerationRequest, width: int | None, height: int | None) -> dict[str, Any]:
    """Our native request for an OpenAI one."""
    seed = req.seed if req.seed is not None else req.rng_seed
    optional = {"negative_prompt": req.negative_prompt, "num_inference_steps": req.num_inference_steps,
                "guidance_scale": req.guidance_scale, "seed": seed, "sampler": req.sampler,
                "width": width, "height": height, "preset": req.preset, "decoder": req.decoder,
                "loras": _loras_field(req.loras)}
    optional["model"] = req.model
    return {"prompt": req.prompt, "num_images": req.n or 1, **{k: v for k, v in optional.items() if v is not None}}


def _loras_field(value: list[dict[str, Any]] | str | None) -> Any:
    """The loras extra as a list (a multipart form carries it as JSON text)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise InvalidRequest('loras must be a JSON list of {"name", "weight"}',
                             [{"field": "loras", "message": "not JSON", "type": "json"}]) from None


def _run(job_type: str, req: ImageGenerationRequest, body: dict[str, Any],
         files: dict[str, bytes] | None = None) -> Response:
    """Queue the job (uploads as raw bytes), wait for it, and answer with its images."""
    generation = services().generation
    job = generation.run(job_type, body, files, caller=caller())
    if job.status is not JobStatus.SUCCEEDED:  # failed or canceled: its stored error, in OpenAI's shape
        raise error_for(job.error or {})
    return jsonify(_images_response(generation, job, req.response_format or "b64_json").model_dump(exclude_none=True))


def _images_response(generation: GenerationService, job: Job, response_format: str) -> ImagesResponse:
    params = (job.result or {}).get("parameters", {})
    data = []
    for name in generation.result_files(job):
        if response_format == "url":
            data.append(ImageData(url=urljoin(request.host_url, generation.file_url(name))))
        else:
            content = generation.read_file(name)
            data.append(ImageData(b64_json=_b64(content) if content else None))
    size = f"{params.get('width')}x{params.get('height')}"
    return ImagesResponse(created=int(job.finished_at or time.time()), data=data, size=size)
