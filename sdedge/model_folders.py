"""Writing a changed copy of an OpenVINO model folder (`sdedge convert --fuse-lora`, `--hybrid-int8`):
the checks on source and output, the copy (large unchanged files hardlinked) and fresh JSON files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from sdedge.convert import ConvertError

__all__ = ["IR_XML", "IR_BIN", "check_new_copy", "link_tree", "read_json", "write_json"]

IR_XML, IR_BIN = "openvino_model.xml", "openvino_model.bin"
_LINK_FROM = 1 << 20  # bytes: files from this size on are hardlinked


def check_new_copy(source: Path, output: Path) -> None:
    """The source must be an OpenVINO model folder; the output new, and neither inside the other."""
    if not (source / "model_index.json").is_file() or not (source / "unet" / IR_XML).is_file():
        raise ConvertError(f"{source} is not an OpenVINO model folder (model_index.json and unet/{IR_XML}); "
                           "export a diffusers model first with `sdedge convert SRC OUT`")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ConvertError(f"{output} already exists; give a new folder")
    real = output.resolve()
    if real == source or real.is_relative_to(source) or source.is_relative_to(real):
        raise ConvertError(f"the output {output} must be outside the model folder {source}")
    if output.is_dir():
        output.rmdir()  # an empty folder: the finished copy is renamed into its place


def link_tree(source: Path, target: Path, skip: set[str]) -> None:
    """Every file of source into target but the skipped ones (relative POSIX paths): large ones hardlinked
    (copied across file systems), small ones (configs, tokenizer) copied, so editing the copy's configs
    never edits the source's."""
    for root, _, files in os.walk(source):
        for name in files:
            path = Path(root) / name
            relative = path.relative_to(source).as_posix()
            if relative in skip:
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                if path.stat().st_size < _LINK_FROM:
                    raise OSError("small: copied")
                os.link(path, destination)
            except OSError:
                shutil.copy2(path, destination)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file (a record a command wrote), or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a fresh file (never through a hardlink into the source folder)."""
    path.unlink(missing_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
