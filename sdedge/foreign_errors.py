"""The one table of foreign exceptions: what openvino-genai, huggingface-hub, SQLAlchemy, Pillow and
httpx (the remote engines' client) raise, as sdedge's own errors. Call sites wrap the foreign call in `map_exceptions(TABLE)`.

The messages are ours: a runtime's internal text (C++ assertions with build paths) is logged, never
shown to a client.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any

import httpx
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
from PIL import Image, UnidentifiedImageError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from sdedge.errors import (
    DatabaseUnavailable, ErrorFactory, GenerationError, InvalidRequest, ModelDownloadError, NotFound,
    PayloadTooLarge, RemoteEngineError, SdedgeError, detail,
)
from sdedge.loras import LoraError, LoraNotFound

log = logging.getLogger(__name__)

# What a user can do when the hub cannot be reached; every hub-unreachable message ends with it.
OFFLINE_WAYS_FORWARD = (
    "Ways forward: set STABLE_DIFFUSION_REPO_ID to a local model folder (an OpenVINO export), "
    "set HF_ENDPOINT to a reachable mirror of the hub, set USE_MOCKS=true to try the page without a model, "
    "or retry with `sdedge download` once the network is back."
)


# -- openvino-genai ---------------------------------------------------------------------------------
def _runtime_failure(exc: BaseException) -> SdedgeError:
    log.error("openvino-genai failed: %s", exc)
    return GenerationError("the runtime could not generate this image with these settings (see the server log)")


RUNTIME_ERRORS: dict[type[BaseException], ErrorFactory] = {RuntimeError: _runtime_failure}


# -- LoRA files (sdedge.loras raises ValueErrors that name the LoRA) ---------------------------------
def _lora_not_found(exc: BaseException) -> SdedgeError:
    return NotFound(str(exc), detail("loras", str(exc), "LoraNotFound", lora=getattr(exc, "name", None)))


def _lora_unusable(exc: BaseException) -> SdedgeError:
    return InvalidRequest(str(exc), detail("loras", str(exc), type(exc).__name__, lora=getattr(exc, "name", None)))


LORA_ERRORS: dict[type[BaseException], ErrorFactory] = {LoraNotFound: _lora_not_found, LoraError: _lora_unusable}


# -- SQLAlchemy -------------------------------------------------------------------------------------
def _database_down(exc: BaseException) -> SdedgeError:
    log.warning("job database unreachable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return DatabaseUnavailable("the job database is unreachable; retry shortly")


def _database_error(exc: BaseException) -> SdedgeError:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return _database_down(exc)
    raise exc


DATABASE_ERRORS: dict[type[BaseException], ErrorFactory] = {OperationalError: _database_down,
                                                            DBAPIError: _database_error}


def is_database_outage(exc: BaseException) -> bool:
    """True when exc means the job database cannot be reached (retry later), not a bug in a query."""
    if isinstance(exc, (DatabaseUnavailable, OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def describe_outage(exc: BaseException) -> str:
    """One line for /health about why the database is unreachable."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"the job database is unreachable ({text[0] if text else type(exc).__name__}); retrying"


# -- httpx (remote engines) -------------------------------------------------------------------------
def remote_errors(engine: str, url: str) -> dict[type[BaseException], ErrorFactory]:
    """What httpx raised while talking to the remote engine `engine` at url, as one line naming both."""
    def failed(what: str) -> ErrorFactory:
        def make(exc: BaseException) -> SdedgeError:
            log.warning("remote engine %s (%s): %s: %s", engine, url, type(exc).__name__, exc)
            return RemoteEngineError(f"remote engine {engine} at {url}: {what} ({_first_line(exc)})")
        return make

    return {httpx.TimeoutException: failed("no answer in time"),
            httpx.ConnectError: failed("cannot connect"),
            httpx.RemoteProtocolError: failed("the connection broke off"),
            httpx.TransportError: failed("the request failed"),
            httpx.DecodingError: failed("the answer could not be decoded"),
            ValueError: failed("the answer is not what its API documents"),
            KeyError: failed("the answer lacks a documented field"),
            OSError: failed("an image in the answer could not be read")}


# -- Pillow ---------------------------------------------------------------------------------------
def image_errors(field: str, max_pixels: int, accepted: tuple[str, ...]) -> dict[type[BaseException], ErrorFactory]:
    """Pillow's exceptions while opening or decoding the upload in field."""
    def too_many_pixels(exc: BaseException) -> SdedgeError:
        message = f"{field}: the image has more pixels than MAX_INPUT_PIXELS={max_pixels}"
        return PayloadTooLarge(message, detail(field, message, "limit"))

    def not_an_image(exc: BaseException) -> SdedgeError:
        message = f"{field}: not a PNG, JPEG or WebP image"
        return InvalidRequest(message, detail(field, message, "image_format", accepted=list(accepted)))

    def corrupt(exc: BaseException) -> SdedgeError:
        message = f"{field}: the image data is corrupt or truncated"
        return InvalidRequest(message, detail(field, message, "image_data"))

    return {Image.DecompressionBombError: too_many_pixels, Image.DecompressionBombWarning: too_many_pixels,
            UnidentifiedImageError: not_an_image, OSError: corrupt, SyntaxError: corrupt, ValueError: corrupt,
            EOFError: corrupt}


# -- huggingface-hub --------------------------------------------------------------------------------
def hub_errors(repo: str, *, transfer: bool = False) -> dict[type[BaseException], ErrorFactory]:
    """Whatever huggingface_hub raised for repo, as one line naming it (transfer: while fetching files)."""
    return {Exception: partial(_hub_error, repo, transfer)}


def hub_endpoint() -> str | None:
    """HF_ENDPOINT as set now (huggingface_hub reads it once at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def _hub_error(repo: str, transfer: bool, exc: BaseException) -> ModelDownloadError:
    cause = _root_cause(exc)
    status = _http_status(cause)
    if isinstance(cause, GatedRepoError) or (status in (401, 403) and not isinstance(cause, RepositoryNotFoundError)):
        return ModelDownloadError(f"access to {repo} was refused (HTTP {status}): set HUGGINGFACE_TOKEN or HF_TOKEN")
    if isinstance(cause, (RepositoryNotFoundError, RevisionNotFoundError)) or status == 404:
        return ModelDownloadError(_not_found(repo, status))
    if _is_network_error(cause) and not transfer:
        where = hub_endpoint() or "https://huggingface.co"
        return ModelDownloadError(f"cannot reach the model hub at {where} to download {repo} "
                                  f"({_first_line(cause)}). {OFFLINE_WAYS_FORWARD}")
    if transfer:
        reason = f"the model hub answered HTTP {status}" if status else _first_line(cause)
        return ModelDownloadError(f"download of {repo} was interrupted ({reason}): run `sdedge download` to resume")
    if status is not None:
        return ModelDownloadError(f"download of {repo} failed: the model hub answered HTTP {status}")
    return ModelDownloadError(f"download of {repo} failed: {_first_line(cause)}")


def _not_found(repo: str, status: int | None) -> str:
    # Without a token the hub answers 401, not 404, for a missing repo (so private ones stay hidden).
    if status in (401, 403):
        return (f"{repo} was not found on the model hub or is private (HTTP {status}): "
                "check STABLE_DIFFUSION_REPO_ID, or set HUGGINGFACE_TOKEN or HF_TOKEN")
    return f"{repo} was not found on the model hub (HTTP {status or 404}): check STABLE_DIFFUSION_REPO_ID"


def _root_cause(exc: BaseException) -> BaseException:
    # huggingface_hub wraps network failures in LocalEntryNotFoundError or ValueError("Force download failed").
    while exc.__cause__ is not None and not isinstance(exc, HfHubHTTPError):
        exc = exc.__cause__
    return exc


def _http_status(exc: BaseException) -> int | None:
    status: Any = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(exc, HfHubHTTPError) and isinstance(status, int) else None


_TRANSPORT_MODULES = ("httpx2", "httpcore2", "httpx", "httpcore", "requests", "urllib3")


def _is_network_error(exc: BaseException) -> bool:
    """True for transport failures, without importing the HTTP client huggingface_hub uses.

    That is httpx2 (hub 2.x), httpx (hub 1.x) or requests (hub 0.x); their inner exceptions come
    from httpcore2, httpcore or urllib3, which chain the socket error only as __context__.
    """
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return any(cls.__module__.split(".")[0] in _TRANSPORT_MODULES for cls in type(exc).__mro__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
