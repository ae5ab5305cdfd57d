"""The model library over HTTP: GET /models (seed 002's shape), one model, download and delete."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from sdedge.auth import caller
from sdedge.openapi_spec import documented
from sdedge.response_schemas import ModelList, ModelView
from sdedge.services import services

bp = Blueprint("models", __name__)


@bp.get("/models")
@documented(responses={200: ModelList})
def list_models() -> Response:
    """Every model offered (catalog, MODELS_DIR, the configured one): family, install state, modes, defaults."""
    return jsonify(services().models.list_view())


@bp.get("/models/<model_id>")
@documented(responses={200: ModelView})
def get_model(model_id: str) -> Response:
    """One model by id."""
    return jsonify(services().models.get(model_id))


@bp.post("/models/<model_id>/download")
@documented(responses={202: ModelView})
def download_model(model_id: str) -> tuple[Response, int]:
    """Download (or resume) a catalog model in the background (admins); progress in GET /models and /health."""
    view = services().models.download(model_id, caller())
    return jsonify(view), 200 if view["installed"] else 202


@bp.delete("/models/<model_id>")
@documented(responses={200: ModelView})
def delete_model(model_id: str) -> Response:
    """Delete a downloaded model's files (admins), unloading it first."""
    return jsonify(services().models.delete(model_id, caller()))
