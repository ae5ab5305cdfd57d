"""The HTTP surfaces, one blueprint module each; they translate HTTP and call the service layer.

    native   POST /image, /health, /samplers, /modes, /generated/<file>
    models   /models: the model library, downloads, deletion
    jobs     /generate/<mode>, /jobs..., /queue/status, Server-Sent Events
    a1111    AUTOMATIC1111's /sdapi/v1 generation, progress, interrupt, png-info
    a1111_listings  AUTOMATIC1111's /sdapi/v1 listings and options
    rq_demo  seed 001's /local/..., /status/<id>, /image/<id>
    denoising_demo  seed 003's /api/request and /api/status/<key>
    openai   OpenAI's /v1 images and models
    docs     /openapi.json and /docs
    page     the web page and its static files
    account  logging in and out, the caller's own API tokens
    metrics  GET /metrics for Prometheus
    mcp      /mcp, the MCP tool server (streamable HTTP)

No blueprint module imports another; what they share is in `sdedge.routes.http_input` and the
service modules.
"""

from __future__ import annotations

from flask import Flask

from sdedge.routes import (
    a1111, a1111_listings, account, denoising_demo, docs, jobs, mcp, metrics, models, native, openai, page, rq_demo,
)


def register_blueprints(app: Flask) -> None:
    """Attach every surface to the app."""
    for module in (native, models, jobs, page, account, a1111, a1111_listings, openai, rq_demo, denoising_demo, docs, metrics,
                   mcp):
        app.register_blueprint(module.bp)
