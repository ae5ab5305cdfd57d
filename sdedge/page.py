"""The web page: index.html and its assets from static/."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory

from sdedge.app import static_dir

bp = Blueprint("page", __name__)


@bp.get("/")
def index() -> Response:
    """The single-page UI."""
    response = send_from_directory(static_dir(), "index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/static/<path:filename>")
def asset(filename: str) -> Response:
    """Page assets; send_from_directory refuses paths that leave the folder."""
    return send_from_directory(static_dir(), filename)
