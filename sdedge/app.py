"""The Flask application factory: `create_app(settings=None)`, no module-level state."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, current_app

from sdedge.config import Settings, load_settings
from sdedge.errors import register_error_handlers
from sdedge.jobs import JobStore
from sdedge.loader import EngineLoader
from sdedge.storage import ImageStore
from sdedge.worker import Notifier, Worker


@dataclass
class Services:
    """Everything a request handler may use; hangs off app.extensions["sdedge"]."""

    settings: Settings
    store: ImageStore
    inputs: ImageStore
    loader: EngineLoader
    jobs: JobStore
    notifier: Notifier
    worker: Worker
    started_at: float = field(default_factory=time.time)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the worker: the running job stops at its next step and is re-queued."""
        self.worker.stop(timeout)


def services() -> Services:
    """The services of the app handling the current request."""
    found: Services = current_app.extensions["sdedge"]
    return found


def static_dir() -> Path:
    """The page's folder: packaged inside sdedge/ by `pip install .`, or the repo's static/."""
    packaged = Path(__file__).parent / "static"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "static"


def create_app(settings: Settings | None = None, *, load_model: bool = True) -> Flask:
    """Build the app; the engine loads in the background unless load_model is False."""
    settings = settings or load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["sdedge"] = svc = build_services(settings)
    register_error_handlers(app)
    _register_blueprints(app)
    if load_model:
        svc.loader.start()
    svc.worker.start()
    return app


def build_services(settings: Settings) -> Services:
    """Wire the store, loader, job store and worker for one app."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    images, inputs = ImageStore(settings.generated_images_dir), ImageStore(settings.data_dir / "inputs")
    loader, jobs, notifier = EngineLoader(settings), JobStore(settings.job_database_url), Notifier()
    worker = Worker(settings, jobs, images, inputs, loader, notifier)
    return Services(settings, images, inputs, loader, jobs, notifier, worker)


def _register_blueprints(app: Flask) -> None:
    from sdedge import a1111, api, jobs_api, openai_api, openapi, page

    app.register_blueprint(api.bp)
    app.register_blueprint(jobs_api.bp)
    app.register_blueprint(page.bp)
    app.register_blueprint(a1111.bp)
    app.register_blueprint(openai_api.bp)
    app.register_blueprint(openapi.bp)
