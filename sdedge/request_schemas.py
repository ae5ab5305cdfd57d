"""Request schemas of the native HTTP API (one per mode) and the /image response, as pydantic models.

Requests accept snake_case and the seeds' camelCase (`negativePrompt`, `guidanceScale`, `steps`).
Limits that depend on settings are applied by `to_params`, which also fills the defaults.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from sdedge.config import Settings
from sdedge.engine.params import MAX_SEED, GenerationParams, random_seed
from sdedge.engine.style import img2img_strength
from sdedge.errors import InvalidRequest
from sdedge.samplers import SAMPLER_NAMES, canonical_sampler, sampler_defaults
from sdedge.step_images import MAX_STEP_IMAGES


def _aliases(*names: str) -> AliasChoices:
    return AliasChoices(*names)


PRIORITY_NAMES = {"low": -10, "normal": 0, "high": 10}
_PRIORITY_SCHEMA = {"anyOf": [{"type": "integer", "minimum": -100, "maximum": 100},
                              {"type": "string", "enum": list(PRIORITY_NAMES)}], "default": 0}


def _priority_value(value: Any) -> Any:
    """Seed 002's priority names as numbers; anything else is validated as an integer."""
    if not isinstance(value, str):
        return value
    name = value.strip().lower()
    if name in PRIORITY_NAMES:
        return PRIORITY_NAMES[name]
    if name.lstrip("+-").isdigit():  # a form field's number
        return int(name)
    raise ValueError(f"priority must be an integer -100..100 or one of {', '.join(PRIORITY_NAMES)}, got {value!r}")


class LoraRequest(BaseModel):
    """One LoRA of a request: a file in LORA_DIR (name without .safetensors, or its alias) and its weight."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(..., min_length=1, max_length=255, description="As GET /loras lists it.")
    weight: float = Field(1.0, ge=-100, le=100, description="A1111's multiplier (at most LORA_MAX_WEIGHT); "
                                                           "0 gives exactly the image without it.")


PresetName = Literal["fast", "balanced", "quality"]
DecoderName = Literal["full", "tiny"]


class GenerateRequest(BaseModel):
    """Text-to-image request, shared by POST /image and the job routes."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False, allow_inf_nan=False)
    # The input images this mode takes: request field -> the engine's input slot (image, mask, style).
    IMAGE_INPUTS: ClassVar[dict[str, str]] = {}

    prompt: str = Field(..., description="What to draw (required; may be empty, as A1111 clients send it).")
    negative_prompt: str = Field(
        "", validation_alias=_aliases("negative_prompt", "negativePrompt"), description="What to avoid."
    )
    num_inference_steps: int | None = Field(
        None, ge=1, validation_alias=_aliases("num_inference_steps", "numInferenceSteps", "steps"),
        description="Denoising steps (default DEFAULT_STEPS, at most MAX_STEPS).",
    )
    guidance_scale: float | None = Field(
        None, ge=0, le=30, validation_alias=_aliases("guidance_scale", "guidanceScale", "cfg_scale"),
        description="Classifier-free guidance; <= 1 skips the unconditional pass (faster).",
    )
    width: int | None = Field(None, description="Multiple of 8 within MIN_SIZE..MAX_WIDTH.")
    height: int | None = Field(None, description="Multiple of 8 within MIN_SIZE..MAX_HEIGHT.")
    seed: int | None = Field(None, ge=-1, le=MAX_SEED, description="Same seed, same image; -1 or absent: random.")
    sampler: str | None = Field(
        None, validation_alias=_aliases("sampler", "scheduler", "sampler_name", "samplerName"),
        description=f"One of {', '.join(SAMPLER_NAMES)} (plms = pndm).",
    )
    num_images: int = Field(
        1, ge=1, validation_alias=_aliases("num_images", "numImages", "n"),
        description="Images to generate (seed, seed+1, ...), at most MAX_IMAGES.",
    )
    model: str | None = Field(None, max_length=200, description="Model id (GET /models), name or A1111 title, or a "
                              "remote model's id (REMOTE_ENGINES); absent: the default model. Unknown: 400 listing "
                              "the available ones.")
    device: Literal["CPU", "GPU", "NPU"] | None = Field(
        None, description="Run on a worker of this device class (OPENVINO_DEVICE lists the devices); absent: any.")
    loras: list[LoraRequest] = Field(
        default_factory=list, max_length=32,
        description="LoRAs blended into the model, at most LORA_MAX_COUNT (the prompt's <lora:name:weight> tags "
                    "add to these).")
    preset: PresetName | None = Field(
        None, description="Steps, guidance, sampler, decoder (and LoRA) for the model's family (GET /presets); "
                          "fields given explicitly win.")
    decoder: DecoderName | None = Field(
        None, description="full VAE or the tiny autoencoder (TAESD, when installed); default: FAST_DECODER.")
    priority: Annotated[int, BeforeValidator(_priority_value), WithJsonSchema(_PRIORITY_SCHEMA)] = Field(
        0, ge=-100, le=100, description="Higher runs first; FIFO within a priority. -100..100, or seed 002's "
        "names: low (-10), normal (0), high (10).",
    )
    step_images: int = Field(
        0, ge=0, le=MAX_STEP_IMAGES, validation_alias=_aliases("step_images", "stepImages"),
        description="Keep this many intermediate step images (cheap latent previews), evenly spaced over the steps; "
                    "the job's result lists them as step_images.")
    transaction_key: str | None = Field(
        None, min_length=1, max_length=200, validation_alias=_aliases("transaction_key", "transactionKey"),
        description="Idempotency key (the Idempotency-Key header works too): resubmitting returns the same job.",
    )

    @field_validator("device", mode="before")
    @classmethod
    def _device_upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = canonical_sampler(value)
        if name is None:
            raise ValueError(f"unknown sampler {value!r}; valid: {', '.join(SAMPLER_NAMES)}, plms")
        return name

    def image_fields(self) -> dict[str, str | bytes]:
        """The input images this request carries, by field name (none for text-to-image)."""
        return {name: getattr(self, name) for name in self.IMAGE_INPUTS}

    def mode_params(self) -> dict[str, Any]:
        """Mode-specific engine parameters."""
        return {"mode": "text2img"}

    def to_params(self, settings: Settings, input_size: tuple[int, int] | None = None,
                  preset: Any = None) -> GenerationParams:
        """Apply defaults (a preset's, else the sampler's or the server's; size from input_size when given) and
        the limits; InvalidRequest names each bad field."""
        width, height = self._size(settings, input_size)
        problems = _limit_problems(self, settings, width, height)
        if problems:
            summary = "; ".join(f"{p['field']} {p['message']}" for p in problems)
            raise InvalidRequest(f"outside the server's limits: {summary}", problems)
        seed = random_seed() if self.seed is None or self.seed < 0 else self.seed
        sampler = self.sampler or (preset.sampler if preset else settings.default_sampler)
        steps, guidance = sampler_defaults(sampler, settings.default_steps, settings.default_guidance_scale)
        if preset is not None:
            steps, guidance = min(preset.steps, settings.max_steps), preset.guidance_scale
        steps = self.num_inference_steps or steps
        return GenerationParams(
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            width=width,
            height=height,
            steps=at_least_one_denoising_step(steps, self.denoising_strength()),
            guidance_scale=guidance if self.guidance_scale is None else self.guidance_scale,
            sampler=sampler,
            seed=seed,
            num_images=self.num_images,
            **self.mode_params(),
        )

    def denoising_strength(self) -> float | None:
        """How much of the schedule an image input is denoised over (None: text-to-image, all of it)."""
        return None

    def _size(self, settings: Settings, input_size: tuple[int, int] | None) -> tuple[int, int]:
        """Requested size; a missing side follows input_size's aspect (the input image, scaled) or DEFAULT_SIZE."""
        width, height = self.width, self.height  # 0 is a size (refused by the limits), not "the default"
        if input_size is None:
            return (settings.default_size if width is None else width,
                    settings.default_size if height is None else height)
        aspect = input_size[0] / input_size[1]
        if width is not None and height is None:
            return width, _multiple_of_8(width / aspect)
        if height is not None and width is None:
            return _multiple_of_8(height * aspect), height
        return input_size[0] if width is None else width, input_size[1] if height is None else height


def at_least_one_denoising_step(steps: int, strength: float | None) -> int:
    """Steps such that strength x steps makes at least one denoising step, as AUTOMATIC1111 always runs one.

    openvino-genai denoises floor(steps x strength) steps (in float32) and fails on zero; below one step
    the steps are raised until exactly one runs, at about the requested strength.
    """
    if strength is None or strength <= 0:
        return steps
    factor = np.float32(strength)
    while int(np.float32(steps) * factor) < 1:
        steps = max(steps + 1, int(1 / strength))
    return steps


def _multiple_of_8(value: float) -> int:
    return max(8, int(round(value / 8)) * 8)


ImageValue = str | bytes
ResizeMode = Literal["crop", "fit", "stretch"]
def _resize_field() -> Any:
    return Field("crop", validation_alias=_aliases("resize_mode", "resizeMode"),
                 description="How an input is fitted to width x height: crop (cover), fit (pad) or stretch.")


class ImageToImageRequest(GenerateRequest):
    """Image-to-image: the text fields plus an init image and a strength."""

    IMAGE_INPUTS: ClassVar[dict[str, str]] = {"init_image": "image"}

    init_image: ImageValue = Field(..., validation_alias=_aliases("init_image", "initImage", "image"),
                                   description="PNG, JPEG or WebP: data URL, bare base64, or a multipart file.")
    strength: float = Field(0.75, ge=0, le=1, validation_alias=_aliases("strength", "denoising_strength"),
                            description="0 returns the input unchanged, 1 repaints it entirely.")
    resize_mode: ResizeMode = _resize_field()

    def denoising_strength(self) -> float | None:
        """img2img strength."""
        return self.strength

    def mode_params(self) -> dict[str, Any]:
        """img2img strength."""
        return {"mode": "img2img", "strength": self.strength}


class InpaintingRequest(GenerateRequest):
    """Inpainting: repaint where the mask is white, keep the rest pixel for pixel."""

    IMAGE_INPUTS: ClassVar[dict[str, str]] = {"image": "image", "mask": "mask"}

    image: ImageValue = Field(..., validation_alias=_aliases("image", "init_image", "initImage"),
                              description="The picture to edit.")
    mask: ImageValue = Field(..., validation_alias=_aliases("mask", "mask_image", "maskImage"),
                             description="White repaints, black keeps; resized to the image when sizes differ.")
    strength: float = Field(1.0, ge=0, le=1,
                            validation_alias=_aliases("strength", "inpaintingStrength", "inpainting_strength"),
                            description="How much the masked area changes.")
    mask_blur: int = Field(4, ge=0, le=64, validation_alias=_aliases("mask_blur", "maskBlur"),
                           description="Feather the mask edge by this many pixels.")
    invert_mask: bool = Field(False, validation_alias=_aliases("invert_mask", "invertMask"),
                              description="Repaint the black part instead.")
    resize_mode: ResizeMode = _resize_field()

    def denoising_strength(self) -> float | None:
        """Inpainting strength."""
        return self.strength

    def mode_params(self) -> dict[str, Any]:
        """Inpainting strength."""
        return {"mode": "inpaint", "strength": self.strength}


class StyleTransferRequest(GenerateRequest):
    """Style transfer: AdaIN in the VAE's latent space, then image-to-image (prompt optional)."""

    IMAGE_INPUTS: ClassVar[dict[str, str]] = {"content_image": "image", "style_image": "style"}

    prompt: str = Field("", description="Optional description of the result.")
    content_image: ImageValue = Field(..., validation_alias=_aliases("content_image", "contentImage"),
                                      description="The picture whose layout is kept.")
    style_image: ImageValue = Field(..., validation_alias=_aliases("style_image", "styleImage"),
                                    description="The picture whose colours and texture are borrowed.")
    style_strength: float = Field(0.7, ge=0, le=1, validation_alias=_aliases("style_strength", "styleStrength"),
                                  description="How far the content's latent statistics move to the style's.")
    content_strength: float = Field(0.3, ge=0, le=1,
                                    validation_alias=_aliases("content_strength", "contentStrength"),
                                    description="How much of the content survives the final repaint.")
    resize_mode: ResizeMode = _resize_field()

    def denoising_strength(self) -> float | None:
        """The final repaint's strength, from content_strength."""
        return img2img_strength(self.content_strength)

    def mode_params(self) -> dict[str, Any]:
        """Style and content strengths."""
        return {"mode": "style-transfer", "style_strength": self.style_strength,
                "content_strength": self.content_strength}


def _limit_problems(req: GenerateRequest, settings: Settings, width: int, height: int) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []

    def bad(field: str, message: str) -> None:
        problems.append({"field": field, "message": message, "type": "limit"})

    for field, text in (("prompt", req.prompt), ("negative_prompt", req.negative_prompt)):
        if len(text) > settings.max_prompt_length:
            bad(field, f"longer than MAX_PROMPT_LENGTH={settings.max_prompt_length} characters")
    for field, value, limit in (("width", width, settings.max_width), ("height", height, settings.max_height)):
        if value % 8 or not settings.min_size <= value <= limit:
            bad(field, f"must be a multiple of 8 from {settings.min_size} to {limit}, got {value}")
    if req.num_inference_steps and req.num_inference_steps > settings.max_steps:
        bad("num_inference_steps", f"at most MAX_STEPS={settings.max_steps}")
    if req.num_images > settings.max_images:
        bad("num_images", f"at most MAX_IMAGES={settings.max_images}")
    return problems


class ImageResponse(BaseModel):
    """The answer of POST /image: the seed's fields plus seed, parameters and timings."""

    job_id: str
    urls: list[str]
    provider: str = "stable-diffusion"
    engine: str
    used_mocks: bool
    created_at: str
    seed: int
    seeds: list[int]
    parameters: dict[str, Any]
    timings: dict[str, float]
