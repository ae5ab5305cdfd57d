"""The Flask application factory: `create_app(settings=None)`, no module-level state."""

from __future__ import annotations

import logging

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from sdedge.config import Settings, load_settings
from sdedge.errors import register_error_handlers
from sdedge.foreign_errors import DATABASE_ERRORS
from sdedge.routes import openai, register_blueprints
from sdedge.security import init_security
from sdedge.services import build_services


def create_app(settings: Settings | None = None, *, load_model: bool = True) -> Flask:
    """Build the app; the engine loads in the background unless load_model is False."""
    settings = settings or load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json = StrictJSONProvider(app)
    app.extensions["sdedge"] = svc = build_services(settings)
    register_error_handlers(app, foreign=DATABASE_ERRORS, renderers={"/v1/": openai.openai_error})
    register_blueprints(app)
    init_security(app, svc)
    if load_model:
        svc.loader.start()
    svc.worker.start()
    return app


class StrictJSONProvider(DefaultJSONProvider):
    """Standard JSON only: NaN or Infinity in an answer is a bug to surface, never text a browser cannot parse."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """JSON text of obj; ValueError for a non-finite number."""
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)
