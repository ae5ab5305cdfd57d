"""The model service: the library's models as clients see them, downloads, deletion, the default model.

GET /models, the A1111 and OpenAI listings, the CLI and the page all read `describe`; every change
(download, delete, a new default) goes through here, which checks the caller may make it.
"""

from __future__ import annotations

import shutil
from typing import Any

from sdedge import model_files
from sdedge.engine.loader import EngineLoader
from sdedge.errors import Conflict, Forbidden, detail
from sdedge.lora_fuse import fused_loras
from sdedge.model_downloads import ModelDownloads
from sdedge.model_library import ModelEntry, ModelLibrary
from sdedge.principal import Principal
from sdedge.remote.models import RemoteModel, remote_models


class ModelService:
    """Models: listing, download, delete, default (on every device: one loader and engine pool per device)."""

    def __init__(self, loaders: list[EngineLoader], downloads: ModelDownloads) -> None:
        self.loaders = loaders  # the first device's first (its pool is the one `pool` describes)
        self.loader, self.library, self.downloads = loaders[0], loaders[0].library, downloads
        self.settings = self.loader.settings

    def devices_of(self, model_id: str) -> list[dict[str, Any]]:
        """The devices this model is loaded on: each worker's requested device and the one its engine runs on."""
        found = []
        for loader in self.loaders:
            engine = loader.pool.engine(model_id)
            if engine is not None:
                found.append({"device": loader.device, "actual": engine.device})
        return found

    def pools(self) -> list[dict[str, Any]]:
        """Each device's engine pool: its loaded models with their measured memory."""
        return [{"device": loader.device, **loader.pool.status()} for loader in self.loaders]

    def describe(self, entry: ModelEntry) -> dict[str, Any]:
        """One model in seed 002's shape (id, name, description, type, loaded, version) and the library's fields."""
        family = entry.family_info
        cat = entry.catalog
        download = self.downloads.state(entry.id)
        on_disk = model_files.folder_bytes(entry.folder) if entry.folder.is_dir() else 0
        devices = [] if self.settings.use_mocks else self.devices_of(entry.id)
        view: dict[str, Any] = {
            "id": entry.id, "name": entry.name, "description": entry.description,
            "type": cat.type if cat else ("inpainting" if "text2img" not in entry.modes() else
                                          "distilled" if family and family.distilled else "base"),
            "loaded": bool(devices), "devices": devices, "version": cat.version if cat else None,
            "family": entry.family_id, "family_name": family.name if family else None,
            "family_source": "model_index.json" if entry.family else ("catalog" if cat else None),
            "source": entry.source, "repo_id": entry.repo_id, "path": str(entry.folder) if entry.installed else None,
            "installed": entry.installed, "size_bytes": on_disk,
            "download_size_bytes": cat.estimated_bytes if cat else None, "download_size_estimated": bool(cat),
            "default": entry.is_default, "loading": any(loader.pool.loading == entry.id for loader in self.loaders),
            "modes": entry.modes(), "negative_prompt": entry.negative_prompt,
            "guidance": family.guidance.value if family else None,
            "size_multiple": family.size_multiple if family else 8,
            "samplers": ["auto"] if entry.flow_matching else None,  # None: every sampler
            "defaults": entry.defaults(self.settings), "hash": self.library.model_hash(entry),
            "title": self.library.title(entry), "problem": entry.problem,
            "fused_loras": fused_loras(entry.folder) if entry.installed else [],  # sdedge convert --fuse-lora
            "download": download.to_dict() if download else None,
        }
        for extra in self.library.extras:  # e.g. presets (sdedge/presets.py): see model_library.ModelExtra
            view.update(extra(entry))
        return view

    def list_view(self) -> dict[str, Any]:
        """GET /models."""
        models = self.library.models()
        remote = [_remote_view(model) for model in remote_models(self.settings)]
        return {"models": [*(self.describe(m) for m in models), *remote],
                "default": next(m.id for m in models if m.is_default),
                "models_dir": str(self.settings.models_dir), "pool": self.loader.pool.status(), "pools": self.pools()}

    def get(self, model_id: str) -> dict[str, Any]:
        """GET /models/<id>."""
        return self.describe(self.library.get(model_id))

    def download(self, model_id: str, caller: Principal) -> dict[str, Any]:
        """Start or resume a model's download (admins, when accounts exist)."""
        _admin_only(caller, "download models")
        entry = self.library.get(model_id)
        if entry.installed:
            return self.describe(entry)
        self.downloads.start(entry)
        return self.describe(self.library.get(model_id))

    def delete(self, model_id: str, caller: Principal) -> dict[str, Any]:
        """Remove a downloaded model's files (unloading it first); the default model and local folders stay."""
        _admin_only(caller, "delete models")
        entry = self.library.get(model_id)
        if entry.is_default:
            raise Conflict(f"model {entry.id} is the default model; make another the default first",
                           detail("model", "the default model cannot be deleted", "state"))
        if entry.source != "catalog":
            raise Conflict(f"model {entry.id} is a folder of yours ({entry.folder}); sdedge deletes only what it "
                           "downloaded", detail("model", "not downloaded by sdedge", "local_model"))
        if self.downloads.running(entry.id):
            raise Conflict(f"model {entry.id} is downloading; wait for it to end",
                           detail("model", "download in progress", "state"))
        self.loader.pool.unload(entry.id)
        freed = model_files.folder_bytes(entry.folder, partial=True)
        shutil.rmtree(entry.folder, ignore_errors=True)
        return {**self.describe(self.library.get(model_id)), "freed_bytes": freed}

    def set_default(self, name: str, caller: Principal) -> ModelEntry:
        """Make the named model the default (A1111's sd_model_checkpoint); 400 for one we do not offer. It changes
        the server for everybody: admins only once accounts exist (naming the default it is already is a no-op
        anyone may send, as A1111 clients do when they connect)."""
        entry = self.library.resolve(name, field="sd_model_checkpoint")
        if entry.id == self.library.default_id():
            return entry
        _admin_only(caller, "change the default model (a request picks its own with `model`, or A1111's "
                            "override_settings.sd_model_checkpoint)")
        if not entry.installed and not (self.settings.auto_download_models and entry.repo_id):
            message = f"model {entry.id} is not installed: download it first (POST /models/{entry.id}/download)"
            raise Conflict(message, detail("sd_model_checkpoint", message, "not_installed"))
        self.library.set_default(entry)
        return entry

    def health(self) -> dict[str, Any]:
        """The models part of /health: loaded ones, the default, and downloads in progress."""
        return {"default": self.library.default_id(), **self.loader.pool.status(), "pools": self.pools(),
                "downloads": self.downloads.active()}


def _admin_only(caller: Principal, what: str) -> None:
    if not caller.sees_all:
        raise Forbidden(f"only an admin may {what}", detail(None, f"only an admin may {what}", "forbidden"))


def _remote_view(model: RemoteModel) -> dict[str, Any]:
    """A REMOTE_ENGINES model in seed 002's shape too (its description says where it runs)."""
    kind = "Stability AI API" if model.kind == "stability" else "AUTOMATIC1111-compatible server"
    return {**model.describe(), "source": "remote", "loaded": model.problem is None, "type": "remote",
            "version": model.model, "description": f"{kind} at {model.url}" + (f" ({model.model})" if model.model else "")}
