"""Reading requests the same way on every surface: JSON bodies parsed strictly, multipart forms,
query strings through validated models.

Strict JSON: duplicate keys, NaN/Infinity, nesting deeper than MAX_JSON_DEPTH and strings that are
not valid Unicode (lone UTF-16 surrogates) are a 400 naming where they are, before any model sees
them; a client never gets "last key wins" or an image that fails later inside the runtime.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel

from sdedge.errors import InvalidRequest, UnsupportedMediaType, detail

MAX_JSON_DEPTH = 32
Query = TypeVar("Query", bound=BaseModel)


class _Refused(ValueError):
    """A JSON construct we refuse, with the field it is in."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 415/400 that says what was wrong with it."""
    if not request.is_json:
        raise UnsupportedMediaType("send a JSON body with Content-Type: application/json")
    body = parse_json(request.get_data(cache=True))
    if not isinstance(body, dict):
        raise InvalidRequest("the JSON body must be an object", detail(None, "must be an object", "json"))
    return body


def parse_json(raw: bytes) -> Any:
    """Strict JSON: a 400 for malformed text, duplicate keys, NaN, deep nesting or invalid Unicode."""
    try:
        value = json.loads(raw, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        _check_values(value)
    except _Refused as exc:
        raise InvalidRequest(f"invalid JSON body: {exc}", detail(exc.field, str(exc), "json")) from None
    except RecursionError:
        message = f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep"
        raise InvalidRequest(message, detail(None, message, "json")) from None
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("malformed JSON body", detail(None, "malformed JSON", "json")) from None
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Refused(f"the key {key!r} appears twice", key)
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _check_values(value: Any) -> None:
    """Depth and Unicode, walked without recursion (a deep body must not exhaust the stack here)."""
    stack: list[tuple[Any, str | None, int]] = [(value, None, 1)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise RecursionError
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key, path)
                stack.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}.{i}" if path else str(i), depth + 1) for i, child in enumerate(item))


def _check_text(text: str, path: str | None) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Refused("a string holds an unpaired UTF-16 surrogate (not valid Unicode)", path) from None


def request_body() -> tuple[dict[str, Any], dict[str, bytes]]:
    """JSON body, or multipart form fields plus uploaded files (by field name)."""
    if request.mimetype == "multipart/form-data":
        files = {name: upload.read() for name, upload in request.files.items()}
        return request.form.to_dict(), files
    return json_body(), {}


def query_args(model: type[Query]) -> Query:
    """The query string through its validated model (pydantic's errors become a 400 naming the parameter)."""
    return model.model_validate(request.args.to_dict())


def idempotency_key() -> str | None:
    """The Idempotency-Key header, when the client sent one."""
    return request.headers.get("Idempotency-Key") or None


def preferences() -> dict[str, str]:
    """The Prefer header's preferences (RFC 7240), lower-cased names to their values ('' for none).

    `Prefer: respond-async, wait=10` -> {"respond-async": "", "wait": "10"}; parameters after `;` are
    dropped, and the first occurrence of a preference wins, as the RFC says.
    """
    found: dict[str, str] = {}
    for header in request.headers.getlist("Prefer"):
        for item in header.split(","):
            name, _, value = item.split(";", 1)[0].strip().partition("=")
            if name.strip():
                found.setdefault(name.strip().lower(), value.strip().strip('"'))
    return found
