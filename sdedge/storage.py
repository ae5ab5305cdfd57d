"""Generated images on disk: PNG files with their parameters embedded, served from one folder."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdedge.engine import GenerationParams

# File names we write and are willing to serve: no separators, no leading dot.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")

A1111_SAMPLER_NAMES = {
    "euler_a": "Euler a",
    "euler": "Euler",
    "ddim": "DDIM",
    "pndm": "PLMS",
    "lms": "LMS",
    "lcm": "LCM",
    "auto": "Automatic",
}


def infotext(params: GenerationParams, seed: int, model: str) -> str:
    """AUTOMATIC1111's 'parameters' text, so other tools read our PNGs' settings."""
    lines = [params.prompt]
    if params.negative_prompt:
        lines.append(f"Negative prompt: {params.negative_prompt}")
    fields = {
        "Steps": params.steps,
        "Sampler": A1111_SAMPLER_NAMES.get(params.sampler, params.sampler),
        "CFG scale": params.guidance_scale,
        "Seed": seed,
        "Size": f"{params.width}x{params.height}",
        "Model": model,
    }
    lines.append(", ".join(f"{key}: {value}" for key, value in fields.items()))
    return "\n".join(lines)


class ImageStore:
    """The folder of generated PNGs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def save(self, name: str, image: Image.Image, parameters: str | None = None) -> str:
        """Write image as name.png with a 'parameters' text chunk; atomic, so readers never see half a file."""
        filename = f"{name}.png"
        self._check_name(filename)
        info = PngInfo()
        if parameters is not None:
            info.add_text("parameters", parameters)
        return self._write_png(filename, image, pnginfo=info)

    def load(self, filename: str) -> Image.Image:
        """Open one of our files fully into memory."""
        path = self.path(filename)
        if path is None:
            raise FileNotFoundError(filename)
        with Image.open(path) as image:
            image.load()
            return image.copy()

    def save_preview(self, job_id: str, image: Image.Image) -> str:
        """Overwrite the job's preview (fast PNG settings: it is replaced within seconds)."""
        filename = f"{job_id}-preview.png"
        self._check_name(filename)
        return self._write_png(filename, image, compress_level=1)

    def size_of(self, filenames: list[str]) -> int:
        """Total bytes of these files (missing ones count 0)."""
        return sum(p.stat().st_size for p in map(self.path, filenames) if p is not None)

    def path(self, filename: str) -> Path | None:
        """The file's path if it is a name we serve and it exists, else None."""
        if not SAFE_NAME.match(filename):
            return None
        path = self.root / filename
        return path if path.is_file() else None

    def delete(self, filenames: list[str]) -> None:
        """Remove files we wrote; missing ones are fine."""
        for filename in filenames:
            path = self.path(filename)
            if path:
                path.unlink(missing_ok=True)

    def free_bytes(self) -> int:
        """Free disk space where images are written."""
        return shutil.disk_usage(self.root).free

    def _write_png(self, filename: str, image: Image.Image, **options: Any) -> str:
        """Write through a hidden partial file and rename, so readers never see half a PNG."""
        partial = self.root / f".{filename}.part"
        image.save(partial, format="PNG", **options)
        os.replace(partial, self.root / filename)
        return filename

    @staticmethod
    def _check_name(filename: str) -> None:
        if not SAFE_NAME.match(filename):
            raise ValueError(f"unsafe file name {filename!r}")
