"""`sdedge models ...`: the model library from the command line.

    sdedge models list          every model offered: id, family, installed, size, default
    sdedge models pull ID       download (or resume) a catalog model, with a progress bar
    sdedge models rm ID         delete a downloaded model's files

The server notices a pulled or removed model at its next listing (the library reads the disk each time).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable

from tqdm import tqdm

from sdedge import model_files
from sdedge.config import load_settings
from sdedge.errors import Conflict, InvalidRequest
from sdedge.model_library import ModelLibrary


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the `models` sub-command to the sdedge parser."""
    models = sub.add_parser("models", help="list, download and delete models (catalog, MODELS_DIR)")
    models_sub = models.add_subparsers(dest="action", required=True)
    models_sub.add_parser("list", help="every model offered, with family, install state and size")
    pull = models_sub.add_parser("pull", help="download a catalog model (resumes an interrupted download)")
    pull.add_argument("model_id")
    remove = models_sub.add_parser("rm", help="delete a downloaded model's files")
    remove.add_argument("model_id")


def _size(count: int | None) -> str:
    return "-" if not count else f"{count / 1e9:.2f} GB" if count >= 1e8 else f"{count / 1e6:.1f} MB"


def cmd_models(args: argparse.Namespace) -> int:
    """Run one `sdedge models` action."""
    library = ModelLibrary(load_settings())
    if args.action == "list":
        print(f"{'id':42} {'family':12} {'installed':9} {'size':>9}  source")
        for m in library.models():
            size = model_files.folder_bytes(m.folder) if m.installed else (m.catalog.estimated_bytes if m.catalog else 0)
            mark = " (default)" if m.is_default else ""
            print(f"{m.id:42} {m.family_id or '?':12} {'yes' if m.installed else 'no':9} "
                  f"{_size(size) + ('' if m.installed else '~'):>9}  {m.source}{mark}")
        return 0
    entry = library.get(args.model_id)
    if args.action == "pull":
        if entry.repo_id is None:
            raise Conflict(f"model {entry.id} is a local folder ({entry.folder}); there is nothing to download")
        hub = library.hub_settings(entry)
        with tqdm(total=0, unit="B", unit_scale=True, desc=entry.id, file=sys.stderr) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            folder = model_files.download_model(hub, show_progress=False, on_progress=progress)
        print(f"{entry.id} is complete in {folder}")
        return 0
    if entry.is_default or entry.source != "catalog":
        raise InvalidRequest(f"model {entry.id} is the default model or a folder of yours; sdedge removes only "
                             "catalog models it downloaded")
    freed = model_files.folder_bytes(entry.folder, partial=True)
    shutil.rmtree(entry.folder, ignore_errors=True)
    print(f"removed {entry.id} ({_size(freed)})")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"models": cmd_models}
