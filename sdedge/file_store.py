"""PNG files on disk: generated images (with their parameters embedded), previews, and stored job inputs."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sdedge.errors import DiskFull
from sdedge.foreign_errors import is_database_outage
from sdedge.job_store import Job
from sdedge.shared_files import SharedFiles

log = logging.getLogger(__name__)

# File names we write and are willing to serve: no separators, no leading dot.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")


class FileStore:
    """One folder of PNGs we wrote (generated images and previews, or a job's stored inputs).

    With `shared` (a fleet on one database), every file is also written to the database, and a file
    another node wrote is fetched from there into this folder, which then acts as a cache.
    """

    def __init__(self, root: Path, shared: SharedFiles | None = None, kind: str = "image") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root = self.root.resolve()
        self.shared, self.kind = shared, kind
        self.last_disk_full: float | None = None  # when a write last failed for want of space

    def sweep_partial_files(self) -> int:
        """Remove the partial files a crash left mid-write (start-up recovery); returns how many."""
        removed = 0
        for partial in self.root.glob(".*part"):
            partial.unlink(missing_ok=True)
            removed += 1
        return removed

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
        filename = preview_name(job_id)
        self._check_name(filename)
        return self._write_png(filename, image, best_effort_sharing=True, compress_level=1)

    def size_of(self, filenames: list[str]) -> int:
        """Total bytes of these files (missing ones count 0)."""
        return sum(p.stat().st_size for p in map(self.path, filenames) if p is not None)

    def path(self, filename: str) -> Path | None:
        """The file's path if it is a name we serve and a regular file here, else None (never a symlink).

        Shared: a file missing here is fetched from the database; a preview always is (another node
        rewrites it every few steps).
        """
        if not SAFE_NAME.match(filename):
            return None
        path = self.root / filename
        if self.shared is not None and not self._refresh(filename, path):
            return None
        # a link, even to a file inside the folder, is not something we wrote: never followed
        return path if path.is_file() and not path.is_symlink() else None

    def _refresh(self, filename: str, path: Path) -> bool:
        """Shared: the database decides whether a file exists (another node may have deleted it)."""
        assert self.shared is not None
        if filename.endswith("-preview.png") or not path.exists():
            return self._fetch(filename)
        if filename in self.shared.existing([filename]):
            return True
        path.unlink(missing_ok=True)  # a cached copy of a file deleted elsewhere
        return False

    def _fetch(self, filename: str) -> bool:
        assert self.shared is not None
        content = self.shared.get(filename)
        if content is None:
            return (self.root / filename).exists() and filename.endswith("-preview.png")  # not shared yet: ours
        partial = self.root / f".{filename}.{os.getpid()}-{threading.get_ident()}.fetch.part"
        partial.write_bytes(content)
        os.replace(partial, self.root / filename)
        return True

    def delete(self, filenames: list[str]) -> None:
        """Remove files we wrote, here and (shared) for every node; missing ones are fine."""
        for filename in filenames:
            if SAFE_NAME.match(filename):
                local = self.root / filename
                if local.is_file() and not local.is_symlink():
                    local.unlink(missing_ok=True)
        if self.shared is not None:
            self.shared.delete([name for name in filenames if SAFE_NAME.match(name)])

    def sweep_cache(self) -> int:
        """Shared: drop cached files the database no longer has (another node deleted or pruned them)."""
        if self.shared is None:
            return 0
        names = [p.name for p in self.root.glob("*.png") if p.is_file()]
        gone = set(names) - self.shared.existing(names)
        for name in gone:
            (self.root / name).unlink(missing_ok=True)
        return len(gone)

    def free_bytes(self) -> int:
        """Free disk space where images are written."""
        return shutil.disk_usage(self.root).free

    def _write_png(self, filename: str, image: Image.Image, *, best_effort_sharing: bool = False,
                   **options: Any) -> str:
        """Write through a hidden partial file and rename, so readers never see half a PNG.

        A failed write leaves nothing behind; a full disk is a DiskFull naming the folder. Shared, the
        file then goes to the database too (for a preview only if it can: a preview is not worth a job).
        """
        partial = self.root / f".{filename}.part"
        try:
            image.save(partial, format="PNG", **options)
            os.replace(partial, self.root / filename)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                self.last_disk_full = time.time()
                raise DiskFull(f"the disk holding {self.root} is full: free some space") from exc
            raise
        self.last_disk_full = None
        if self.shared is not None:
            self._share(filename, best_effort_sharing)
        return filename

    def _share(self, filename: str, best_effort: bool) -> None:
        assert self.shared is not None
        try:
            self.shared.put(filename, (self.root / filename).read_bytes(), self.kind)
        except Exception as exc:  # noqa: BLE001 - see below
            if not best_effort or not is_database_outage(exc):
                raise
            log.debug("preview %s not shared: the database is unreachable", filename)

    @staticmethod
    def _check_name(filename: str) -> None:
        if not SAFE_NAME.match(filename):
            raise ValueError(f"unsafe file name {filename!r}")


def preview_name(job_id: str) -> str:
    """The file name of a job's step preview."""
    return f"{job_id}-preview.png"


def remove_job_files(images: FileStore, input_files: FileStore, job: Job) -> None:
    """Delete a job's generated images, its last preview, its step images and its stored inputs."""
    from sdedge.input_files import stored_names  # input_files imports this module

    from sdedge import step_images

    kept_steps = step_images.names_up_to(job.id, job.params, job.progress_step)  # a failed run's too
    images.delete(list({*job.files, preview_name(job.id), *kept_steps}))
    input_files.delete(list(stored_names(job.params).values()))
