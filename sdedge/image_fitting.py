"""Fitting input images to the output size, preparing masks, and compositing inpainting results."""

from __future__ import annotations

from PIL import Image, ImageFilter, ImageOps

from sdedge.config import Settings


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
    """An input's aspect with its longer side at DEFAULT_SIZE, in multiples of 8 within the limits."""
    width, height = image.size
    scale = settings.default_size / max(width, height)

    def side(value: float, limit: int) -> int:
        return max(settings.min_size, min(limit, int(round(value * scale / 8)) * 8))

    return side(width, settings.max_width), side(height, settings.max_height)


def within_limits(size: tuple[int, int], settings: Settings) -> tuple[int, int]:
    """An upload's own size scaled down into the limits, keeping its aspect, in multiples of 8."""
    width, height = size
    scale = min(1.0, settings.max_width / width, settings.max_height / height)
    return (max(settings.min_size, int(width * scale) // 8 * 8), max(settings.min_size, int(height * scale) // 8 * 8))


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
