"""Model files: find the Stable Diffusion model on disk, check it is complete, and download it from the hub."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, snapshot_download
from tqdm.auto import tqdm

from sdedge.config import Settings, looks_like_local_path
from sdedge.errors import DiskFull, ModelDownloadError, ModelError, map_exceptions
from sdedge.foreign_errors import hub_endpoint, hub_errors

log = logging.getLogger(__name__)

_PARTS = ("text_encoder", "unet", "vae_decoder", "vae_encoder")

# openvino-genai opens each part's config.json (UNet2DConditionModel, AutoencoderKL and
# CLIPTextModel assert on it), so those are required alongside the IR files.
REQUIRED_FILES: tuple[str, ...] = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "tokenizer/openvino_tokenizer.xml",
    "tokenizer/openvino_tokenizer.bin",
    *(f"{part}/{name}" for part in _PARTS[:3] for name in ("config.json", "openvino_model.xml", "openvino_model.bin")),
)

# vae_encoder is needed only for img2img/inpainting; the tokenizer extras are read when present.
OPTIONAL_FILES: tuple[str, ...] = (
    *(f"vae_encoder/{name}" for name in ("config.json", "openvino_model.xml", "openvino_model.bin")),
    "tokenizer/openvino_detokenizer.xml",
    "tokenizer/openvino_detokenizer.bin",
    *(f"tokenizer/{name}" for name in ("tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")),
)

# SDXL, SD3 and FLUX add these (a second and third text encoder, a transformer instead of the UNet).
_MORE_PARTS = ("text_encoder_2", "text_encoder_3", "transformer")
_TOKENIZERS = ("tokenizer", "tokenizer_2", "tokenizer_3")
_NOT_RUNTIME = ("scheduler", "safety_checker", "feature_extractor", "image_encoder")

# Only what the runtime reads: never the PyTorch/ONNX weights or sample images a repo may carry.
ALLOW_PATTERNS: list[str] = [
    "model_index.json",
    "scheduler/*.json",
    *(f"{tok}/{pattern}" for tok in _TOKENIZERS for pattern in ("*.json", "*.txt", "openvino_*.xml", "openvino_*.bin")),
    *(f"{part}/{name}" for part in (*_PARTS, *_MORE_PARTS)
      for name in ("*.json", "openvino_model.xml", "openvino_model.bin")),
]

MARKER_NAME = ".sdedge-complete"
_HF_META_DIR = ".cache"  # huggingface_hub keeps local_dir metadata and partial files here
_PROGRESS_INTERVAL = 0.5

ProgressCallback = Callable[[int, int], None]


# --- inspecting folders -------------------------------------------------------------------


def missing_files(folder: Path) -> list[str]:
    """Required files (per the folder's model_index.json, else REQUIRED_FILES) that are absent or empty."""
    return [name for name in required_files(folder) if not _nonempty(folder / name)]


def required_files(folder: Path) -> tuple[str, ...]:
    """The files the runtime opens for this folder's components (SDXL, SD3 and FLUX have more than SD)."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return REQUIRED_FILES
    if not isinstance(index, dict):
        return REQUIRED_FILES
    names = ["model_index.json", "scheduler/scheduler_config.json"]
    for key, value in index.items():
        if key.startswith("_") or key in _NOT_RUNTIME or not isinstance(value, list) or None in value[:2]:
            continue
        if key.startswith("tokenizer"):
            names += [f"{key}/openvino_tokenizer.xml", f"{key}/openvino_tokenizer.bin"]
        else:
            part = "vae_decoder" if key == "vae" else key
            names += [f"{part}/{name}" for name in ("config.json", "openvino_model.xml", "openvino_model.bin")]
    return tuple(names) if len(names) > 2 else REQUIRED_FILES


def _nonempty(path: Path) -> bool:
    # A 0-byte file is what an aborted copy or a failed write leaves behind.
    try:
        return path.is_file() and path.stat().st_size > 0
    except OSError:
        return False


def _is_local(settings: Settings) -> bool:
    # A path that does not exist is still meant as a folder: never send it to the hub as a repo id.
    return settings.model_is_local or looks_like_local_path(settings.stable_diffusion_repo_id)


def _local_folder(settings: Settings) -> Path:
    return Path(settings.stable_diffusion_repo_id).expanduser().resolve()


def hub_model_dir(settings: Settings) -> Path:
    """Where the hub repo is (or will be) downloaded."""
    name = settings.stable_diffusion_repo_id.replace("/", "--")
    return settings.models_cache_dir / "stable-diffusion" / name


def _hub_complete(folder: Path) -> bool:
    # The marker is written last, so files without it are a download that never finished.
    return (folder / MARKER_NAME).is_file() and not missing_files(folder)


def _has_content(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def _incomplete(folder: Path, missing: list[str]) -> str:
    if not folder.is_dir():
        return (f"model folder {folder} does not exist (STABLE_DIFFUSION_REPO_ID): point it at an OpenVINO "
                "export or a hub repo id, or set USE_MOCKS=true to try the page")
    return f"model folder {folder} is incomplete: missing {', '.join(missing)}"


def resolve_model(settings: Settings) -> Path | None:
    """The complete model folder to load, or None when there is none."""
    if _is_local(settings):
        folder = _local_folder(settings)
        return None if missing_files(folder) else folder
    folder = hub_model_dir(settings)
    return folder if _hub_complete(folder) else None


def model_problem(settings: Settings) -> str | None:
    """Why resolve_model() returns None, in one line; None when the model is usable."""
    if resolve_model(settings) is not None:
        return None
    if _is_local(settings):
        folder = _local_folder(settings)
        return _incomplete(folder, missing_files(folder))
    repo, folder = settings.stable_diffusion_repo_id, hub_model_dir(settings)
    if _has_content(folder):
        return f"download of {repo} into {folder} was interrupted: run `sdedge download` to finish it"
    if not settings.auto_download_models:
        return (f"model {repo} is not downloaded (AUTO_DOWNLOAD_MODELS=false): run `sdedge download`, "
                "set STABLE_DIFFUSION_REPO_ID to a local model folder, or USE_MOCKS=true to try the page")
    return f"model {repo} is not downloaded yet; it is fetched at start-up, or run `sdedge download`"


def describe_model(settings: Settings) -> dict[str, object]:
    """What GET /models and /health report about the configured model."""
    local = _is_local(settings)
    folder = _local_folder(settings) if local else hub_model_dir(settings)
    present = _has_content(folder)
    return {
        "id": str(folder) if local else settings.stable_diffusion_repo_id,
        "source": "local" if local else "hub",
        "path": str(folder) if present else None,
        "present": present,
        "complete": resolve_model(settings) is not None,
        "missing": missing_files(folder),
        "size_bytes": _folder_bytes(folder),
        "inpainting": _unet_in_channels(folder) == 9,
        "has_vae_encoder": all(_nonempty(folder / f"vae_encoder/openvino_model.{ext}") for ext in ("xml", "bin")),
    }


def _unet_in_channels(folder: Path) -> int | None:
    # Inpainting UNets take 9 input channels (latents + mask + masked-image latents).
    try:
        value = json.loads((folder / "unet" / "config.json").read_text(encoding="utf-8")).get("in_channels")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _folder_bytes(folder: Path, *, partial: bool = False) -> int:
    """Bytes of the model files in folder; with partial, also huggingface_hub's *.incomplete downloads."""
    total = 0
    for path in folder.rglob("*") if folder.is_dir() else ():
        if _counted(path.relative_to(folder), partial):
            try:
                total += path.stat().st_size if path.is_file() else 0
            except OSError:  # files come and go while huggingface_hub renames them
                pass
    return total


def folder_bytes(folder: Path, *, partial: bool = False) -> int:
    """Bytes of the model files in folder (with partial, unfinished downloads too): its size on disk."""
    return _folder_bytes(folder, partial=partial)


def _counted(relative: Path, partial: bool) -> bool:
    if relative.name.endswith(".incomplete"):
        return partial
    return relative.parts[0] != _HF_META_DIR and relative.name != MARKER_NAME


# --- downloading ----------------------------------------------------------------------------


def download_model(
    settings: Settings, *, force: bool = False, show_progress: bool = True, on_progress: ProgressCallback | None = None
) -> Path:
    """Make the model complete on disk (downloading or resuming it) and return its folder."""
    if _is_local(settings):
        return _checked_local_folder(settings)
    folder = hub_model_dir(settings)
    if not force and _hub_complete(folder):
        return folder
    (folder / MARKER_NAME).unlink(missing_ok=True)
    revision, total, listed = _remote_revision(settings)
    check_disk_space(folder, total, settings.min_free_disk_mb * 1024 * 1024)
    with _watch_progress(folder, total, on_progress):
        _snapshot(settings, folder, revision, force=force, show_progress=show_progress)
    _finish(settings, folder, revision, listed)
    return folder


def check_disk_space(folder: Path, total: int, keep_free: int) -> None:
    """Refuse a download that would not fit (what is already here counts: a resume needs only the rest)."""
    need = max(0, total - _folder_bytes(folder, partial=True))
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need + keep_free > free:
        raise DiskFull(f"not enough disk space for {total / 1e9:.2f} GB into {folder}: {need / 1e9:.2f} GB still to "
                       f"fetch, {free / 1e9:.2f} GB free, MIN_FREE_DISK_MB={keep_free // (1024 * 1024)} kept free")


def _checked_local_folder(settings: Settings) -> Path:
    # A user's own folder is never downloaded into or written to.
    folder = _local_folder(settings)
    missing = missing_files(folder)
    if missing:
        raise ModelError(_incomplete(folder, missing))
    return folder


def _finish(settings: Settings, folder: Path, revision: str, listed: frozenset[str]) -> None:
    repo = settings.stable_diffusion_repo_id
    missing = missing_files(folder)
    # snapshot_download may return a half-filled folder without raising when it loses the hub
    # after our model_info call: files the hub listed but that are not here were never fetched.
    unfetched = [name for name in missing if name in listed]
    if unfetched:
        raise ModelDownloadError(
            f"download of {repo} was interrupted (not fetched: {', '.join(unfetched)}): run `sdedge download` to resume"
        )
    if missing:
        raise ModelDownloadError(f"{repo} lacks files the runtime needs: {', '.join(missing)}")
    record = json.dumps({"repo_id": repo, "revision": revision})
    (folder / MARKER_NAME).write_text(record + "\n", encoding="utf-8")
    log.info("model %s (revision %s) is complete in %s", repo, revision, folder)


def _token(settings: Settings) -> str | None:
    # None lets huggingface_hub fall back to HF_TOKEN or the token saved by `hf auth login`.
    return settings.huggingface_token or None


def _remote_revision(settings: Settings) -> tuple[str, int, frozenset[str]]:
    """Ask the hub for the commit to fetch, and the names and byte total of its allowed files."""
    # Asked separately because snapshot_download, when this call fails, quietly returns
    # whatever half-downloaded local_dir exists instead of raising.
    api = HfApi(endpoint=hub_endpoint(), token=_token(settings))
    with map_exceptions(hub_errors(settings.stable_diffusion_repo_id)):
        info = api.model_info(settings.stable_diffusion_repo_id, files_metadata=True,
                              timeout=settings.request_timeout)  # REQUEST_TIMEOUT: our own HTTP calls' timeout
    if not info.sha:
        raise ModelDownloadError(f"the model hub gave no revision for {settings.stable_diffusion_repo_id}")
    allowed = [s for s in info.siblings or [] if any(fnmatch(s.rfilename, p) for p in ALLOW_PATTERNS)]
    return info.sha, sum(s.size or 0 for s in allowed), frozenset(s.rfilename for s in allowed)


def remote_total(settings: Settings) -> int:
    """Bytes of the runtime's files in the hub repo STABLE_DIFFUSION_REPO_ID names (asks the hub)."""
    return _remote_revision(settings)[1]


def _snapshot(settings: Settings, folder: Path, revision: str, *, force: bool, show_progress: bool) -> None:
    """Fetch the allowed files of one pinned commit into folder; resumes what is already there."""
    with map_exceptions(hub_errors(settings.stable_diffusion_repo_id, transfer=True)):
        snapshot_download(
            settings.stable_diffusion_repo_id,
            revision=revision,  # pinned, so every file comes from the commit we checked
            local_dir=folder,
            # snapshot_download writes refs into cache_dir even with local_dir: keep them in our folder.
            cache_dir=folder / _HF_META_DIR / "huggingface" / "hub",
            allow_patterns=ALLOW_PATTERNS,
            token=_token(settings),
            endpoint=hub_endpoint(),
            force_download=force,
            tqdm_class=None if show_progress else _QuietTqdm,
        )


class _QuietTqdm(tqdm):
    """A progress bar that never draws (show_progress=False)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


# --- progress -------------------------------------------------------------------------------


@contextmanager
def _watch_progress(folder: Path, total: int, on_progress: ProgressCallback | None) -> Iterator[None]:
    """Report bytes on disk every _PROGRESS_INTERVAL seconds while the body runs."""
    # Polling the folder works with every huggingface_hub version; tqdm hooks differ between 0.x and 1.x.
    if on_progress is None:
        yield
        return
    _report(folder, total, on_progress)  # at once, so the total is known before the first poll
    stop = threading.Event()
    thread = threading.Thread(target=_poll, args=(folder, total, on_progress, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    _report(folder, total, on_progress)  # one exact report after success: where the download ended


def _poll(folder: Path, total: int, on_progress: ProgressCallback, stop: threading.Event) -> None:
    while not stop.wait(_PROGRESS_INTERVAL):
        _report(folder, total, on_progress)


def _report(folder: Path, total: int, on_progress: ProgressCallback) -> None:
    try:
        done = _folder_bytes(folder, partial=True)
        on_progress(min(done, total) if total else done, total)
    except Exception:  # a broken progress display must not break the download
        log.exception("download progress report failed")
