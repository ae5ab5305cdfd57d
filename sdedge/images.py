"""Input images: decoding uploads safely, fitting them to the requested size, masks and compositing."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from sdedge.config import Settings
from sdedge.errors import InvalidRequest, PayloadTooLarge

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
RESIZE_MODES = ("crop", "fit", "stretch")
DATA_URL = re.compile(r"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)


def image_bytes(field: str, value: str | bytes, settings: Settings) -> bytes:
    """Raw bytes of an upload, a data URL or bare base64; checked against MAX_IMAGE_BYTES."""
    if isinstance(value, str):
        text = DATA_URL.sub("", value.strip(), count=1)
        if len(text) > settings.max_image_bytes * 4 // 3 + 4:
            raise _too_large(field, settings)
        try:
            value = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{field}: not valid base64 or a data URL", {"field": field}) from None
    if not value:
        raise InvalidRequest(f"{field}: the image is empty", {"field": field})
    if len(value) > settings.max_image_bytes:
        raise _too_large(field, settings)
    return value


def _too_large(field: str, settings: Settings) -> PayloadTooLarge:
    return PayloadTooLarge(f"{field}: larger than MAX_IMAGE_BYTES={settings.max_image_bytes}", {"field": field})


def decode_image(field: str, value: str | bytes, settings: Settings, *, background: str = "white") -> Image.Image:
    """A PNG, JPEG or WebP as an upright RGB image, alpha flattened onto background; 4xx naming field."""
    data = image_bytes(field, value, settings)
    image = _open(field, data, settings)
    if image.width * image.height > settings.max_input_pixels:  # checked on the header, before decoding
        raise _too_many_pixels(field, f"{image.width}x{image.height}", settings)
    _load(field, image)
    return _flatten(ImageOps.exif_transpose(image) or image, background)


def _open(field: str, data: bytes, settings: Settings) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own guard
        raise _too_many_pixels(field, "the image", settings) from None
    except UnidentifiedImageError:
        raise InvalidRequest(f"{field}: not a PNG, JPEG or WebP image",
                             {"field": field, "accepted": list(ACCEPTED_FORMATS)}) from None


def _too_many_pixels(field: str, size: str, settings: Settings) -> PayloadTooLarge:
    message = f"{field}: {size} has more pixels than MAX_INPUT_PIXELS={settings.max_input_pixels}"
    return PayloadTooLarge(message, {"field": field})


def _load(field: str, image: Image.Image) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidRequest(f"{field}: the image data is corrupt or truncated", {"field": field}) from None


def _flatten(image: Image.Image, background: str) -> Image.Image:
    """Drop alpha by painting the image over a solid background (masks: black = keep)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, background)
        return Image.alpha_composite(base, rgba).convert("RGB")
    return image.convert("RGB")


def fit_to_size(image: Image.Image, width: int, height: int, mode: str) -> Image.Image:
    """Resize to width x height: crop (cover, centre-crop), fit (contain, pad) or stretch."""
    if image.size == (width, height):
        return image
    if mode == "stretch":
        return image.resize((width, height), Image.Resampling.LANCZOS)
    if mode == "fit":
        return ImageOps.pad(image, (width, height), Image.Resampling.LANCZOS, color=_edge_colour(image))
    return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)


def _edge_colour(image: Image.Image) -> tuple[int, ...] | int:
    """The top-left pixel: a padded border in the image's own colour is less jarring than black."""
    pixel = image.getpixel((0, 0))
    return pixel if isinstance(pixel, (tuple, int)) else 0


def default_size(image: Image.Image, settings: Settings) -> tuple[int, int]:
    """The input's aspect with its longer side at DEFAULT_SIZE, in multiples of 8 within the limits."""
    scale = settings.default_size / max(image.width, image.height)

    def side(value: float, limit: int) -> int:
        return max(settings.min_size, min(limit, int(round(value * scale / 8)) * 8))

    return side(image.width, settings.max_width), side(image.height, settings.max_height)


def prepare_mask(mask: Image.Image, source_size: tuple[int, int], width: int, height: int, mode: str,
                 blur: int, invert: bool) -> Image.Image:
    """A greyscale mask aligned with the fitted image: white repaints, black keeps, edges softened."""
    grey = mask.convert("L")
    if grey.size != source_size:  # a mask of another size is stretched onto the source image first
        grey = grey.resize(source_size, Image.Resampling.BILINEAR)
    grey = fit_to_size(grey, width, height, mode)
    if invert:
        grey = ImageOps.invert(grey)
    return grey.filter(ImageFilter.GaussianBlur(blur)) if blur else grey


def composite(original: Image.Image, generated: Image.Image, mask: Image.Image) -> Image.Image:
    """Generated pixels where the mask is white, the original's exactly where it is black."""
    return Image.composite(generated.convert("RGB"), original.convert("RGB"), mask.convert("L"))
