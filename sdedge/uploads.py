"""Uploaded images, decoded safely: every image and mask on every surface goes through here.

Bytes come from a multipart file, a data URL or bare base64; they are checked against
MAX_IMAGE_BYTES, then the header's pixel count against MAX_INPUT_PIXELS (before any decoding), with
Pillow's own decompression-bomb guard on as well. Pillow's exceptions become 4xx errors naming the
field through `sdedge.foreign_errors.image_errors`.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from PIL import Image, ImageOps

from sdedge.config import Settings
from sdedge.errors import InvalidRequest, PayloadTooLarge, detail, map_exceptions
from sdedge.foreign_errors import image_errors

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)
# Whose pixels a mask repaints when it carries transparency: A1111 repaints the opaque part, OpenAI
# the fully transparent part. A mask without transparency is read as grey: white repaints.
MaskConvention = Literal["opaque", "transparent"]


def image_bytes(field: str, value: str | bytes, settings: Settings) -> bytes:
    """Raw bytes of an upload, a data URL or bare base64; checked against MAX_IMAGE_BYTES."""
    if isinstance(value, str):
        text = DATA_URL.sub("", value.strip(), count=1)
        if len(text) > settings.max_image_bytes * 4 // 3 + 4:
            raise _too_large(field, settings)
        try:
            value = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{field}: not valid base64 or a data URL", detail(field, "not valid base64",
                                                                                   "image_encoding")) from None
    if not value:
        raise InvalidRequest(f"{field}: the image is empty", detail(field, "the image is empty", "image_data"))
    if len(value) > settings.max_image_bytes:
        raise _too_large(field, settings)
    return value


def _too_large(field: str, settings: Settings) -> PayloadTooLarge:
    message = f"{field}: larger than MAX_IMAGE_BYTES={settings.max_image_bytes}"
    return PayloadTooLarge(message, detail(field, message, "limit"))


def open_checked(field: str, value: str | bytes, settings: Settings) -> Image.Image:
    """The upload opened lazily (header read, pixels not decoded) once its size is within the limits."""
    data = image_bytes(field, value, settings)
    with _guarded(field, settings):
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    if image.width * image.height > settings.max_input_pixels:  # checked on the header, before decoding
        message = f"{field}: {image.width}x{image.height} has more pixels than MAX_INPUT_PIXELS={settings.max_input_pixels}"
        raise PayloadTooLarge(message, detail(field, message, "limit"))
    return image


def image_size(field: str, value: str | bytes, settings: Settings) -> tuple[int, int]:
    """Width and height of an upload, from its header (which is checked like every upload)."""
    return open_checked(field, value, settings).size


def image_metadata(field: str, value: str | bytes, settings: Settings) -> dict[str, Any]:
    """An upload's metadata (PNG text chunks, EXIF...) as Pillow reads it, the image checked like every upload."""
    image = open_checked(field, value, settings)
    with _guarded(field, settings):
        image.load()  # text chunks after the pixel data are read only now
    return {str(key): item for key, item in image.info.items()}


def decode_image(field: str, value: str | bytes, settings: Settings, *, background: str = "white") -> Image.Image:
    """A PNG, JPEG or WebP as an upright RGB image, alpha flattened onto background; 4xx naming field."""
    image = open_checked(field, value, settings)
    with _guarded(field, settings):
        image.load()
        upright = ImageOps.exif_transpose(image) or image
    return _flatten(upright, background)


def decode_mask(field: str, value: str | bytes, settings: Settings, convention: MaskConvention) -> Image.Image:
    """A mask as greyscale, white where to repaint: by its alpha when it has transparency, else its grey."""
    image = open_checked(field, value, settings)
    with _guarded(field, settings):
        image.load()
        image = ImageOps.exif_transpose(image) or image
        alpha = image.convert("RGBA").getchannel("A") if _has_alpha(image) else None
    lowest = alpha.getextrema()[0] if alpha is not None else 255
    if alpha is None or not isinstance(lowest, (int, float)) or lowest == 255:
        return _flatten(image, "black").convert("L")
    if convention == "transparent":
        return alpha.point(lambda a: 255 if a == 0 else 0)
    return alpha.point(lambda a: 255 if a > 128 else 0)


def png_bytes(image: Image.Image) -> bytes:
    """An image as PNG bytes (a decoded mask handed on as an upload)."""
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@contextmanager
def _guarded(field: str, settings: Settings) -> Iterator[None]:
    """Pillow's bomb warning raised as an error, and every Pillow failure as a 4xx naming field."""
    with warnings.catch_warnings(), map_exceptions(image_errors(field, settings.max_input_pixels, ACCEPTED_FORMATS)):
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _flatten(image: Image.Image, background: str) -> Image.Image:
    """Drop alpha by painting the image over a solid background (masks: black = keep)."""
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, background)
        return Image.alpha_composite(base, rgba).convert("RGB")
    return image.convert("RGB")
