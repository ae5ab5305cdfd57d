"""The services of one app, wired together, on app.extensions["sdedge"] for request handlers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app

from sdedge.accounts import AccountStore
from sdedge.auth import Authenticator
from sdedge.config import Settings
from sdedge.engine.devices import plan_devices
from sdedge.engine.factory import EngineFactory, build_engine
from sdedge.engine.loader import EngineLoader
from sdedge.fair_use import SubmissionMeter
from sdedge.file_store import FileStore
from sdedge.job_events import JobEvents
from sdedge.job_store import JobStore
from sdedge.lora_listing import presets_view
from sdedge.model_downloads import ModelDownloads
from sdedge.model_library import ModelLibrary
from sdedge.model_service import ModelService
from sdedge.nodes import NodeRegistry, default_node_name, node_id
from sdedge.notifier import Notifier
from sdedge.remote.models import remote_models
from sdedge.remote.source import RemoteSource
from sdedge.service import GenerationService
from sdedge.shared_files import SharedFiles
from sdedge.worker_pool import WorkerPool


@dataclass
class Services:
    """Everything a request handler may use; hangs off app.extensions["sdedge"]."""

    settings: Settings
    generation: GenerationService
    loader: EngineLoader  # the first device's (the one /health and the model listings describe)
    images: FileStore  # generated PNGs and previews, served under /generated/
    worker: WorkerPool  # one worker per device and per remote model
    accounts: AccountStore  # users and API tokens, in the job database
    auth: Authenticator
    nodes: NodeRegistry
    events: JobEvents  # job events for metrics and JSON logs
    models: ModelService  # the model library: listing, downloads, the default model
    started_at: float = field(default_factory=time.time)
    closers: list[Callable[[], None]] = field(default_factory=list)  # integrations to end at shutdown (MCP loop)
    submissions: SubmissionMeter | None = None  # RATE_LIMIT for MCP tool calls; set with the rate limiter

    @property
    def loaders(self) -> list[EngineLoader]:
        """Every local device's loader, the first one first."""
        return self.worker.loaders

    def start_loading(self) -> None:
        """Load every device's engine in the background."""
        for loader in self.loaders:
            loader.start()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the workers: running jobs stop at their next step and are re-queued."""
        self.worker.stop(timeout)
        for close in self.closers:
            close()


def services() -> Services:
    """The services of the app handling the current request."""
    found: Services = current_app.extensions["sdedge"]
    return found


def build_services(settings: Settings, engine_factory: EngineFactory = build_engine) -> Services:
    """Wire the stores, loader, worker and generation service for one app (engines built by engine_factory)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the node id lives there even with DATABASE_URL
    job_store, notifier = JobStore(settings.job_database_url), Notifier()
    library = ModelLibrary(settings)  # shared by every device's loader; each loader keeps its own engine pool
    # one loader (own pipelines) per device present: OPENVINO_DEVICE=GPU,CPU runs two workers
    loaders = [EngineLoader(settings, device, library, engine_factory)
               for device in plan_devices(settings.device_list)]
    remotes = [RemoteSource(remote) for remote in remote_models(settings)]
    shared = None if job_store.is_local else SharedFiles(job_store.db)  # a fleet: every node serves every file
    images = FileStore(settings.generated_images_dir, shared, "image")
    input_file_store = FileStore(settings.data_dir / "inputs", shared, "input")
    nodes = NodeRegistry(job_store.db, node_id(settings.data_dir), settings.node_name or default_node_name())
    events = JobEvents()
    worker = WorkerPool(settings, job_store, images, input_file_store, notifier, nodes, loaders, remotes, events)
    generation = GenerationService(settings, job_store, images, input_file_store, loaders[0], notifier, worker, nodes,
                                   events)
    accounts = AccountStore(job_store.db)
    # each model's presets in GET /models (what each runs and needs), through the library's extras hook
    library.extras.append(lambda m: {"presets": presets_view(settings, m.folder if m.installed else None,
                                                             m.family_info)["presets"]})
    models = ModelService(loaders, ModelDownloads(settings, library))
    return Services(settings, generation, loaders[0], images, worker, accounts, Authenticator(accounts, settings), nodes,
                    events, models)
