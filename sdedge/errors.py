"""Errors sdedge raises, and the one place they become JSON responses.

    SdedgeError                      500 internal_error
    ├── InvalidRequest               400 invalid_request
    │   ├── UnsupportedMediaType     415 unsupported_media_type
    │   └── PayloadTooLarge          413 payload_too_large
    ├── Unauthorized                 401 unauthorized (with WWW-Authenticate)
    ├── Forbidden                    403 forbidden
    ├── NotFound                     404 not_found
    ├── Conflict                     409 conflict
    ├── QueueFull                    429 queue_full
    ├── RateLimited                  429 rate_limited
    ├── ModelError                   503 model_unavailable
    │   ├── ModelNotReady            503 model_not_ready
    │   └── ModelDownloadError       503 model_download_failed
    ├── DiskFull                     507 disk_full
    ├── DatabaseUnavailable          503 database_unavailable
    └── GenerationError              500 generation_failed
        ├── RemoteEngineError        502 remote_engine_failed
        ├── GenerationCanceled       409 canceled
        └── GenerationTimeout        504 timeout

Every 4xx/5xx body is `{"error": {"code": str, "message": str, "details": [{"field", "message", "type"}, ...]}}`:
`details` is always a list with at least one entry; `field` is null when the problem is not one field's,
and an entry may carry more keys (the job's `status`, the queue's `queued`...).

Exceptions of the libraries sdedge calls (openvino-genai, huggingface-hub, SQLAlchemy, Pillow, httpx) become
these through one table, `sdedge.foreign_errors`, applied with `map_exceptions`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class SdedgeError(Exception):
    """Base of every error sdedge reports to a client."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, details: list[dict[str, Any]] | dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = normalise_details(details, message, self.code)
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidRequest(SdedgeError):
    """The request is malformed or out of limits."""

    status_code = 400
    code = "invalid_request"


class UnsupportedMediaType(InvalidRequest):
    """The body is not of a type the route accepts."""

    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLarge(InvalidRequest):
    """The body or an uploaded image is over its limit."""

    status_code = 413
    code = "payload_too_large"


class Unauthorized(SdedgeError):
    """No credential, or a wrong one, where one is needed."""

    status_code = 401
    code = "unauthorized"


class Forbidden(SdedgeError):
    """The request is refused whoever makes it (e.g. a cross-site form post)."""

    status_code = 403
    code = "forbidden"


class NotFound(SdedgeError):
    """No such resource."""

    status_code = 404
    code = "not_found"


class Conflict(SdedgeError):
    """The resource is not in a state that allows the operation."""

    status_code = 409
    code = "conflict"


class QueueFull(SdedgeError):
    """Too many jobs are waiting."""

    status_code = 429
    code = "queue_full"


class RateLimited(SdedgeError):
    """Too many requests from one user or address in a time window."""

    status_code = 429
    code = "rate_limited"


class ModelError(SdedgeError):
    """The model cannot be used."""

    status_code = 503
    code = "model_unavailable"


class ModelNotReady(ModelError):
    """The model is still downloading or compiling, or failed to."""

    code = "model_not_ready"


class ModelDownloadError(ModelError):
    """Fetching the model from the hub failed."""

    code = "model_download_failed"


class DiskFull(SdedgeError):
    """The disk that holds images (or job inputs) is full."""

    status_code = 507
    code = "disk_full"


class DatabaseUnavailable(SdedgeError):
    """The job database cannot be reached; retried until it is back."""

    status_code = 503
    code = "database_unavailable"


class GenerationError(SdedgeError):
    """The engine failed while generating."""

    code = "generation_failed"


class RemoteEngineError(GenerationError):
    """A remote engine (another A1111-compatible server, the Stability AI API) failed or refused a job."""

    status_code = 502
    code = "remote_engine_failed"


class GenerationCanceled(GenerationError):
    """The generation was stopped on request."""

    status_code = 409
    code = "canceled"
    partial: Any = None  # the engine's PartialOutput: what was made before the stop


class GenerationTimeout(GenerationError):
    """The generation took longer than allowed."""

    status_code = 504
    code = "timeout"


def detail(field: str | None, message: str, kind: str, **extra: Any) -> dict[str, Any]:
    """One entry of an error's details."""
    return {"field": field, "message": message, "type": kind, **extra}


def normalise_details(details: list[dict[str, Any]] | dict[str, Any] | None, message: str,
                      kind: str) -> list[dict[str, Any]]:
    """Details in the one shape: a non-empty list of {field, message, type, ...}."""
    entries = [details] if isinstance(details, dict) else list(details or [])
    if not entries:
        entries = [{}]
    core = ("field", "message", "type")
    return [{"field": entry.get("field"), "message": entry.get("message") or message, "type": entry.get("type") or kind,
             **{key: value for key, value in entry.items() if key not in core}} for entry in entries]


ErrorFactory = Callable[[BaseException], SdedgeError]


@contextmanager
def map_exceptions(table: Mapping[type[BaseException], ErrorFactory]) -> Iterator[None]:
    """Raise ours for a foreign exception the table knows (the first matching class wins)."""
    try:
        yield
    except SdedgeError:
        raise
    except Exception as exc:
        for kind, make in table.items():
            if isinstance(exc, kind):
                raise make(exc) from exc
        raise


def error_for(stored: dict[str, Any]) -> SdedgeError:
    """Rebuild the error a job stored (its code and message) as the matching exception."""
    code = stored.get("code", "generation_failed")
    kinds = {cls.code: cls for cls in _all_subclasses(SdedgeError)}
    error = kinds.get(code, GenerationError)(stored.get("message", "generation failed"), stored.get("details"))
    if code not in kinds:
        error.code = code
        error.details = normalise_details(stored.get("details"), error.message, code)
    return error


def _all_subclasses(cls: type[SdedgeError]) -> list[type[SdedgeError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_all_subclasses(sub)]
    return found


def pydantic_details(exc: ValidationError) -> list[dict[str, Any]]:
    """Field-by-field problems, without echoing (possibly huge) input values."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or None, "message": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def invalid_from_pydantic(exc: ValidationError) -> InvalidRequest:
    """Wrap a pydantic validation failure as a 400 naming the fields."""
    details = pydantic_details(exc)
    summary = "; ".join(f"{d['field'] or 'body'}: {d['message']}" for d in details)
    return InvalidRequest(f"invalid request: {summary}", details)


def error_response(error: SdedgeError) -> Response:
    """Render an SdedgeError in the one JSON shape."""
    response = jsonify(error.to_dict())
    response.status_code = error.status_code
    response.headers.update(error.headers)
    return response


def from_http_exception(exc: HTTPException) -> SdedgeError:
    """Translate werkzeug's own errors (404, 405, 413, bad JSON) into ours."""
    error = SdedgeError(exc.description or exc.name)
    error.status_code = exc.code or 500
    error.code = exc.name.lower().replace(" ", "_").replace("'", "")
    error.details = normalise_details(None, error.message, error.code)
    # e.g. the Allow header of a 405; the body is ours, so not its Content-Type
    error.headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
    return error


Renderer = Callable[["SdedgeError"], Response]


def register_error_handlers(app: Flask, *, foreign: Mapping[type[BaseException], ErrorFactory] | None = None,
                            renderers: Mapping[str, Renderer] | None = None) -> None:
    """Map every exception to its surface's JSON error shape, once, for the whole app.

    foreign translates library exceptions that may escape a request (the database's, say); renderers
    give a path prefix its own shape (OpenAI's under /v1/); everything else gets sdedge's shape.
    """
    by_prefix = dict(renderers or {})

    @app.errorhandler(Exception)
    def _any(exc: Exception) -> Response:
        error = as_sdedge_error(exc, foreign or {})
        render = next((r for prefix, r in by_prefix.items() if request.path.startswith(prefix)), error_response)
        return render(error)


def as_sdedge_error(exc: BaseException, foreign: Mapping[type[BaseException], ErrorFactory]) -> SdedgeError:
    """Ours for any exception: our own, pydantic's, werkzeug's, a known foreign one, else a logged 500."""
    if isinstance(exc, SdedgeError):
        return exc
    if isinstance(exc, ValidationError):
        return invalid_from_pydantic(exc)
    if isinstance(exc, HTTPException):
        return from_http_exception(exc)
    for kind, make in foreign.items():
        if isinstance(exc, kind):
            return make(exc)
    log.error("unhandled error", exc_info=exc)
    return internal_error(exc)


def internal_error(exc: BaseException) -> SdedgeError:
    """A 500 for a bug: names the exception's class, never its text (which may hold paths or secrets)."""
    return SdedgeError("internal server error", detail(None, "internal server error", "internal",
                                                       exception=type(exc).__name__))
