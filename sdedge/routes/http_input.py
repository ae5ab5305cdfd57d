"""Reading request bodies, the same way on every surface."""

from __future__ import annotations

from typing import Any

from flask import request

from sdedge.errors import InvalidRequest, UnsupportedMediaType


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 415/400 that says what was wrong with it."""
    if not request.is_json:
        raise UnsupportedMediaType("send a JSON body with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise InvalidRequest("malformed JSON body")
    if not isinstance(body, dict):
        raise InvalidRequest("the JSON body must be an object")
    return body


def request_body() -> tuple[dict[str, Any], dict[str, bytes]]:
    """JSON body, or multipart form fields plus uploaded files (by field name)."""
    if request.mimetype == "multipart/form-data":
        files = {name: upload.read() for name, upload in request.files.items()}
        return request.form.to_dict(), files
    return json_body(), {}


def idempotency_key() -> str | None:
    """The Idempotency-Key header, when the client sent one."""
    return request.headers.get("Idempotency-Key") or None
