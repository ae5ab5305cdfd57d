"""The services of one app, wired together, on app.extensions["sdedge"] for request handlers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app

from sdedge.accounts import AccountStore
from sdedge.auth import Authenticator
from sdedge.config import Settings
from sdedge.engine.loader import EngineLoader
from sdedge.fair_use import SubmissionMeter
from sdedge.file_store import FileStore
from sdedge.job_events import JobEvents
from sdedge.job_store import JobStore
from sdedge.nodes import NodeRegistry, default_node_name, node_id
from sdedge.notifier import Notifier
from sdedge.service import GenerationService
from sdedge.shared_files import SharedFiles
from sdedge.worker import Worker


@dataclass
class Services:
    """Everything a request handler may use; hangs off app.extensions["sdedge"]."""

    settings: Settings
    generation: GenerationService
    loader: EngineLoader
    images: FileStore  # generated PNGs and previews, served under /generated/
    worker: Worker
    accounts: AccountStore  # users and API tokens, in the job database
    auth: Authenticator
    nodes: NodeRegistry
    events: JobEvents  # job events for metrics and JSON logs
    started_at: float = field(default_factory=time.time)
    closers: list[Callable[[], None]] = field(default_factory=list)  # integrations to end at shutdown (MCP loop)
    submissions: SubmissionMeter | None = None  # RATE_LIMIT for MCP tool calls; set with the rate limiter

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the worker: the running job stops at its next step and is re-queued."""
        self.worker.stop(timeout)
        for close in self.closers:
            close()


def services() -> Services:
    """The services of the app handling the current request."""
    found: Services = current_app.extensions["sdedge"]
    return found


def build_services(settings: Settings) -> Services:
    """Wire the stores, loader, worker and generation service for one app."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the node id lives there even with DATABASE_URL
    loader, job_store, notifier = EngineLoader(settings), JobStore(settings.job_database_url), Notifier()
    shared = None if job_store.is_local else SharedFiles(job_store.db)  # a fleet: every node serves every file
    images = FileStore(settings.generated_images_dir, shared, "image")
    input_file_store = FileStore(settings.data_dir / "inputs", shared, "input")
    nodes = NodeRegistry(job_store.db, node_id(settings.data_dir), settings.node_name or default_node_name())
    events = JobEvents()
    worker = Worker(settings, job_store, images, input_file_store, loader, notifier, nodes, events)
    generation = GenerationService(settings, job_store, images, input_file_store, loader, notifier, worker, nodes, events)
    accounts = AccountStore(job_store.db)
    return Services(settings, generation, loader, images, worker, accounts, Authenticator(accounts, settings), nodes,
                    events)
