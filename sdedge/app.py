"""The Flask application factory: `create_app(settings=None)`, no module-level state."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from sdedge.config import Settings, load_settings
from sdedge.engine.factory import EngineFactory, build_engine
from sdedge.errors import register_error_handlers
from sdedge.foreign_errors import DATABASE_ERRORS
from sdedge.routes import openai, register_blueprints
from sdedge.security import init_security
from sdedge.http_metrics import init_http_metrics
from sdedge.json_logs import configure_logging, log_job_events
from sdedge.mcp_mount import McpBridge
from sdedge.metrics import AppMetrics
from sdedge.services import Services, build_services


def create_app(settings: Settings | None = None, *, load_model: bool = True,
               engine_factory: EngineFactory = build_engine) -> Flask:
    """Build the app; the engine loads in the background unless load_model is False.

    engine_factory builds each OpenVINO engine (default: compile a new one; the tests lend loaded ones).
    """
    settings = settings or load_settings()
    configure_logging(settings)
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json = StrictJSONProvider(app)
    app.extensions["sdedge"] = svc = build_services(settings, engine_factory)
    register_error_handlers(app, foreign=DATABASE_ERRORS, renderers={"/v1/": openai.openai_error})
    register_blueprints(app)
    init_integrations(app, svc)
    init_security(app, svc)
    if load_model:
        svc.start_loading()
    svc.worker.start()
    return app


def init_integrations(app: Flask, svc: Services) -> None:
    """Metrics (registry, job events, HTTP counts), job event logs, the MCP bridge; before the security
    layer, so refused requests are counted too."""
    app.extensions["sdedge.metrics"] = metrics = AppMetrics(svc)
    init_http_metrics(app, metrics)
    log_job_events(svc.events)
    if svc.settings.mcp_enabled:
        app.extensions["sdedge.mcp"] = McpBridge(svc)


class StrictJSONProvider(DefaultJSONProvider):
    """Standard JSON only: NaN or Infinity in an answer is a bug to surface, never text a browser cannot parse."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """JSON text of obj; ValueError for a non-finite number."""
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)
