"""Decoding uploads safely: formats, limits checked on the header, EXIF, alpha, masks."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_settings
from sdedge.config import Settings
from sdedge.errors import InvalidRequest, PayloadTooLarge
from sdedge.uploads import decode_image, decode_mask, png_bytes


def encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with no pixel data: a decompression-bomb probe."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


@pytest.fixture
def limits(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, max_image_bytes=200_000, max_input_pixels=1_000_000)


def test_data_url_bare_base64_and_bytes_decode_alike(limits: Settings) -> None:
    raw = encode(Image.new("RGB", (16, 8), (10, 20, 30)))
    b64 = base64.b64encode(raw).decode()
    for value in (raw, b64, f"data:image/png;base64,{b64}"):
        image = decode_image("init_image", value, limits)
        assert image.size == (16, 8) and image.getpixel((0, 0)) == (10, 20, 30)


def test_jpeg_and_webp_are_accepted(limits: Settings) -> None:
    for fmt in ("JPEG", "WEBP"):
        assert decode_image("x", encode(Image.new("RGB", (8, 8)), fmt), limits).mode == "RGB"


@pytest.mark.parametrize(
    ("value", "error", "fragment"),
    [
        ("!!not base64!!", InvalidRequest, "base64"),
        (b"", InvalidRequest, "empty"),
        (b"GIF89a" + b"\x00" * 20, InvalidRequest, "PNG, JPEG or WebP"),
        (png_header_only(20000, 20000), PayloadTooLarge, "MAX_INPUT_PIXELS"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, InvalidRequest, "PNG, JPEG or WebP"),
        (b"x" * 300_000, PayloadTooLarge, "MAX_IMAGE_BYTES"),
    ],
)
def test_bad_images_are_refused_naming_the_field(limits: Settings, value: str | bytes, error: type,
                                                  fragment: str) -> None:
    with pytest.raises(error) as caught:
        decode_image("init_image", value, limits)
    assert "init_image" in caught.value.message and fragment in caught.value.message


def test_gif_is_refused_even_when_real(limits: Settings) -> None:
    with pytest.raises(InvalidRequest):
        decode_image("image", encode(Image.new("RGB", (8, 8)), "GIF"), limits)


def test_truncated_png_is_corrupt(limits: Settings) -> None:
    data = encode(Image.effect_noise((64, 64), 50).convert("RGB"))
    with pytest.raises(InvalidRequest) as caught:
        decode_image("image", data[: len(data) // 2], limits)
    assert "corrupt" in caught.value.message


def test_exif_orientation_is_applied(limits: Settings) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(Image.new("RGB", (40, 20)), "JPEG", exif=exif)
    assert decode_image("image", data, limits).size == (20, 40)


def test_alpha_is_flattened_onto_the_background(limits: Settings) -> None:
    clear = encode(Image.new("RGBA", (4, 4), (255, 0, 0, 0)))
    assert decode_image("image", clear, limits).getpixel((0, 0)) == (255, 255, 255)
    assert decode_image("mask", clear, limits, background="black").getpixel((0, 0)) == (0, 0, 0)


def openai_mask() -> Image.Image:
    """OpenAI's convention: opaque keeps, fully transparent (alpha 0) is edited."""
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (16, 16, 48, 48))
    return mask


def test_repaint_mask_converts_transparency_and_keeps_plain_masks(limits: Settings) -> None:
    converted = np.asarray(decode_mask("mask", png_bytes(openai_mask()), limits, "transparent"))
    assert converted[0, 0] == 0 and converted[32, 32] == 255
    plain = Image.new("L", (64, 64), 0)
    plain.paste(255, (0, 0, 8, 8))
    kept = np.asarray(decode_mask("mask", png_bytes(plain), limits, "transparent"))
    assert kept[0, 0] == 255 and kept[32, 32] == 0
