"""GET /metrics: the Prometheus text format, from the app's own registry (sdedge.metrics)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sdedge.auth import caller
from sdedge.metrics import AppMetrics
from sdedge.openapi_spec import documented
from sdedge.services import services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@documented(response_content="text/plain")
def metrics() -> Response:
    """Prometheus metrics: jobs, queue, model, workers, disk, HTTP (METRICS_TOKEN or a signed-in user)."""
    svc = services()
    # A scrape token was checked by the authentication hook; without one, METRICS_TOKEN asks for a user.
    if svc.settings.metrics_token and not g.get("sdedge_scraper") and not caller().authenticated:
        raise svc.auth.challenge("/metrics needs METRICS_TOKEN as a Bearer token, or a user's credential")
    found: AppMetrics = current_app.extensions["sdedge.metrics"]
    response = Response(generate_latest(found.registry), headers={"Cache-Control": "no-store"})
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST  # its version parameter tells the format
    return response
