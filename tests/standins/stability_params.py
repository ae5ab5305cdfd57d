"""Request validation for the Stability AI stand-in: the documented fields, limits and error names.

Split from `stability.py` (the server); the sources are cited there.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from PIL import Image

MAX_BODY = 10 * 1024 * 1024
ASPECT_SIZES = {"1:1": (1024, 1024), "16:9": (1344, 768), "21:9": (1536, 640), "2:3": (832, 1216),
                "3:2": (1216, 832), "4:5": (896, 1088), "5:4": (1088, 896), "9:16": (768, 1344), "9:21": (640, 1536)}
SD3_MODELS = {"sd3.5-large": 6.5, "sd3.5-large-turbo": 4.0, "sd3.5-medium": 3.5, "sd3.5-flash": 2.5}
V2_COST = {"ultra": 8.0, "core": 3.0, "inpaint": 3.0}
FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
STYLE_PRESETS = ("3d-model", "analog-film", "anime", "cinematic", "comic-book", "digital-art", "enhance",
                 "fantasy-art", "isometric", "line-art", "low-poly", "modeling-compound", "neon-punk", "origami",
                 "photographic", "pixel-art", "tile-texture")
V1_ENGINES = [
    {"id": "stable-diffusion-v1-6", "name": "Stable Diffusion v1.6", "type": "PICTURE",
     "description": "Stability-AI Stable Diffusion v1.6"},
    {"id": "stable-diffusion-xl-1024-v1-0", "name": "Stable Diffusion XL v1.0", "type": "PICTURE",
     "description": "Stability-AI Stable Diffusion XL v1.0"},
]
V1_SAMPLERS = ("DDIM", "DDPM", "K_DPMPP_2M", "K_DPMPP_2S_ANCESTRAL", "K_DPM_2", "K_DPM_2_ANCESTRAL", "K_EULER",
               "K_EULER_ANCESTRAL", "K_HEUN", "K_LMS")
SDXL_SIZES = {(1024, 1024), (1152, 896), (1216, 832), (1344, 768), (1536, 640), (640, 1536), (768, 1344),
              (832, 1216), (896, 1152)}
RATE_LIMIT_TEXT = ("You have exceeded the rate limit of {n} requests within a {s:g} second period, and have been "
                   "timed out for 60 seconds.")


class ApiError(Exception):
    """One documented error answer: status, `name`, and the messages."""

    def __init__(self, status: int, name: str, *messages: str) -> None:
        super().__init__(f"{status} {name}: {'; '.join(messages)}")
        self.status, self.name, self.messages = status, name, list(messages)


def seed_of(value: int, high: int) -> int:
    """The seed used: the one asked for, or a random one in 1..high for 0 (the API's "random")."""
    return value if value else int(uuid.uuid4().int % high) + 1


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Text fields and file fields of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    if not message.is_multipart():
        raise ApiError(400, "bad_request", "content-type: must be multipart/form-data with a boundary")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        if part.get_param("filename", header="content-disposition") is not None:
            files[name] = payload
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return fields, files


def _number(fields: dict[str, str], name: str, kind: type, low: float, high: float, default: Any) -> Any:
    raw = fields.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name}: must be a {kind.__name__}") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name}: must be between {low:g} and {high:g}")
    return value


def v2_params(service: str, fields: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
    """Validate a v2beta form the way the docs define its fields."""
    problems = []
    prompt = fields.get("prompt", "")
    if not prompt.strip():
        problems.append("prompt: cannot be empty")
    if len(prompt) > 10000 or len(fields.get("negative_prompt", "")) > 10000:
        problems.append("prompt: must be at most 10000 characters")
    ratio = fields.get("aspect_ratio", "1:1")
    if ratio not in ASPECT_SIZES:
        problems.append(f"aspect_ratio: must be one of {', '.join(ASPECT_SIZES)}")
    fmt = fields.get("output_format", "png")
    if fmt not in FORMATS or (service == "sd3" and fmt == "webp"):
        problems.append("output_format: must be one of png, jpeg" + ("" if service == "sd3" else ", webp"))
    preset = fields.get("style_preset")
    if preset and preset not in STYLE_PRESETS:
        problems.append(f"style_preset: must be one of {', '.join(STYLE_PRESETS)}")
    model = fields.get("model", "sd3.5-large") if service == "sd3" else service
    if service == "sd3" and model not in SD3_MODELS:
        problems.append(f"model: must be one of {', '.join(SD3_MODELS)}")
    mode = fields.get("mode", "text-to-image")
    if service == "sd3" and mode not in ("text-to-image", "image-to-image"):
        problems.append("mode: must be text-to-image or image-to-image")
    size, scaled = ASPECT_SIZES.get(ratio, (1024, 1024)), True
    if (service == "sd3" and mode == "image-to-image") or (service == "ultra" and "image" in files):
        if "image" not in files:
            problems.append("image: is required for image-to-image")
        elif "strength" not in fields:
            problems.append("strength: is required for image-to-image")
        else:
            size, scaled = _input_size(files["image"]), False
    if problems:
        raise ApiError(400, "bad_request", *problems)
    _number(fields, "strength", float, 0, 1, None)
    _number(fields, "cfg_scale", float, 1, 10, None)
    seed = _number(fields, "seed", int, 0, 4294967294, 0)
    return {"prompt": prompt, "model": model, "size": size, "scaled": scaled, "format": fmt, "seed": seed}


def inpaint_params(fields: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
    """Validate an edit/inpaint form: image (required), prompt, mask (or the image's alpha), grow_mask 0-20."""
    problems = []
    prompt = fields.get("prompt", "")
    if not prompt.strip():
        problems.append("prompt: cannot be empty")
    if len(prompt) > 10000 or len(fields.get("negative_prompt", "")) > 10000:
        problems.append("prompt: must be at most 10000 characters")
    fmt = fields.get("output_format", "png")
    if fmt not in FORMATS:
        problems.append("output_format: must be one of png, jpeg, webp")
    preset = fields.get("style_preset")
    if preset and preset not in STYLE_PRESETS:
        problems.append(f"style_preset: must be one of {', '.join(STYLE_PRESETS)}")
    if "image" not in files:
        problems.append("image: is required")
    if problems:
        raise ApiError(400, "bad_request", *problems)
    size = _input_size(files["image"])
    if "mask" in files:
        mask = _mask(files["mask"], size)
    else:
        with Image.open(io.BytesIO(files["image"])) as image:
            if "A" not in image.getbands():
                raise ApiError(400, "bad_request", "mask: is required when the image has no alpha channel")
            mask = image.getchannel("A").point(lambda v: 255 - v)  # transparent pixels are inpainted
    return {"prompt": prompt, "size": size, "format": fmt, "mask": mask,
            "grow_mask": _number(fields, "grow_mask", int, 0, 20, 5),
            "seed": _number(fields, "seed", int, 0, 4294967294, 0)}


def _mask(data: bytes, size: tuple[int, int]) -> Image.Image:
    """The mask as a greyscale image of the input's size (the docs: resized when it differs)."""
    try:
        with Image.open(io.BytesIO(data)) as mask:
            return mask.convert("L").resize(size)
    except OSError:
        raise ApiError(400, "bad_request", "mask: is not a valid jpeg, png or webp image") from None


def _input_size(data: bytes) -> tuple[int, int]:
    """The input image's size (outputs of image-to-image keep it); 400 for what is not an image or too small."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except OSError:
        raise ApiError(400, "bad_request", "image: is not a valid jpeg, png or webp image") from None
    if min(width, height) < 64:
        raise ApiError(400, "bad_request", "image: width and height must be at least 64 pixels")
    return width, height


def json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"null")
    except ValueError:
        raise ApiError(400, "bad_request", "body: malformed JSON") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_request", "body: must be a JSON object")
    return value


def v1_form(fields: dict[str, str], files: dict[str, bytes]) -> dict[str, Any]:
    """A v1 image-to-image form as the JSON-shaped request (text_prompts[i][text|weight] gathered)."""
    prompts: dict[int, dict[str, Any]] = {}
    for name, value in fields.items():
        if match := re.fullmatch(r"text_prompts\[(\d+)\]\[(text|weight)\]", name):
            entry = prompts.setdefault(int(match.group(1)), {})
            entry[match.group(2)] = float(value) if match.group(2) == "weight" else value
    if "init_image" not in files:
        raise ApiError(400, "bad_request", "init_image: is required")
    req: dict[str, Any] = {k: v for k, v in fields.items() if not k.startswith("text_prompts[")}
    req["text_prompts"] = [prompts[i] for i in sorted(prompts)]
    req["size"] = _input_size(files["init_image"])
    return req


def v1_params(engine: str, kind: str, req: dict[str, Any], accept: str) -> dict[str, Any]:
    """Validate a v1 generation request against the spec's limits."""
    prompts = req.get("text_prompts")
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, dict) and p.get("text") for p in prompts):
        raise ApiError(400, "bad_request", "text_prompts: is required and each needs a text")
    if any(len(str(p["text"])) > 2000 for p in prompts):
        raise ApiError(400, "bad_request", "text_prompts: text must be at most 2000 characters")
    fields = {k: str(v) for k, v in req.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    samples = _number(fields, "samples", int, 1, 10, 1)
    if samples > 1 and accept == "image/png":
        raise ApiError(400, "invalid_samples", "Sample count may only be greater than 1 when the accept header is set "
                       "to `application/json`")
    if kind == "text-to-image":
        width, height = _number(fields, "width", int, 128, 2048, 512), _number(fields, "height", int, 128, 2048, 512)
        if width % 64 or height % 64:
            raise ApiError(400, "invalid_height_or_width", "Height and width must be specified in increments of 64")
        if engine.startswith("stable-diffusion-xl") and (width, height) not in SDXL_SIZES:
            raise ApiError(400, "invalid_height_or_width", "For SDXL engines, dimensions must be one of the "
                           "supported sizes (e.g. 1024x1024)")
        if not engine.startswith("stable-diffusion-xl") and not 262144 <= width * height <= 1048576:
            raise ApiError(400, "invalid_pixel_count", "262,144 <= height * width <= 1,048,576")
        size, scaled = (width, height), True
    else:
        _number(fields, "image_strength", float, 0, 1, 0.35)
        size, scaled = req["size"], False
    if req.get("sampler") is not None and req["sampler"] not in V1_SAMPLERS:
        raise ApiError(400, "bad_request", f"sampler: must be one of {', '.join(V1_SAMPLERS)}")
    _number(fields, "cfg_scale", float, 0, 35, 7)
    return {"prompts": [{"text": str(p["text"]), "weight": float(p.get("weight", 1))} for p in prompts],
            "samples": samples, "steps": _number(fields, "steps", int, 10, 150, 50),
            "seed": _number(fields, "seed", int, 0, 4294967295, 0), "size": size, "scaled": scaled}
