"""The web page: index.html and its assets from static/."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

bp = Blueprint("page", __name__)


def static_dir() -> Path:
    """The page's folder: packaged inside sdedge/ by `pip install .`, or the repo's static/."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "static"
    return packaged if packaged.is_dir() else package.parent / "static"


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
