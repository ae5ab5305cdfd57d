"""A local stand-in of the Stability AI REST API: deterministic PNGs, the documented answers and errors.

Sources it follows (no code copied):
- v2beta Stable Image edit: `POST /v2beta/stable-image/edit/inpaint` (multipart: image required, prompt,
  mask optional (else the image's alpha channel; white repaints), grow_mask 0-20 default 5, negative_prompt,
  seed, output_format, style_preset; the answer keeps the input's size; 3 credits), same answers and errors.
- v2beta Stable Image, the current text-to-image and image-to-image API: platform.stability.ai/docs/
  api-reference (`POST /v2beta/stable-image/generate/ultra|core|sd3`: multipart/form-data only, max
  10 MiB; `authorization: Bearer sk-...`; `accept: image/*` for raw bytes with `finish-reason` and `seed`
  headers, or `application/json` for `{image, finish_reason, seed}`; errors `{id, name, errors: [..]}`
  with 400 bad_request, 403 content_moderation, 413 payload_too_large, 422 (e.g. invalid_language),
  429 rate_limit_exceeded (150 requests / 10 s), 500 internal_error). Fields: prompt (1-10000),
  negative_prompt, aspect_ratio (16:9 1:1 21:9 2:3 3:2 4:5 5:4 9:16 9:21), seed (0-4294967294, 0 =
  random), output_format (png, jpeg, webp), style_preset (core); sd3 adds model (sd3.5-large,
  sd3.5-large-turbo, sd3.5-medium, sd3.5-flash), mode (text-to-image | image-to-image with image and
  strength), cfg_scale (1-10). As called by SillyTavern 1.19.0 (src/endpoints/stable-diffusion.js L1085).
- v1 (legacy, SD 1.x/SDXL engines): the OpenAPI spec Stability-AI/rest-api-support generated/spec/
  merged.json and its examples: `POST /v1/generation/{engine_id}/text-to-image` JSON `{text_prompts:
  [{text, weight}], cfg_scale 0-35, height, width (multiples of 64, 262144..1048576 pixels), samples
  1-10, steps 10-150, seed 0-4294967295, sampler}` -> `{artifacts: [{base64, seed, finishReason}]}`
  (or `image/png` with `Finish-Reason`/`Seed` headers); `.../image-to-image` multipart with
  `init_image`, `image_strength`, `text_prompts[0][text]`; `GET /v1/user/balance` -> `{credits}`,
  `GET /v1/engines/list`, `GET /v1/user/account`; errors `{id, name, message}` (401 unauthorized,
  404 not_found, 400 bad_request, 500 server_error).
Moderation, rate limits and failures are triggered on purpose through the constructor's settings.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image, ImageFilter

from .stability_params import (
    FORMATS, MAX_BODY, RATE_LIMIT_TEXT, SD3_MODELS, V1_ENGINES, V2_COST, ApiError, inpaint_params, json_object,
    parse_multipart, seed_of, v1_form, v1_params, v2_params,
)


@dataclass
class Received:
    """One request as the stand-in saw it, for tests to assert on what a client sent."""

    method: str
    path: str
    headers: dict[str, str]
    fields: dict[str, str]
    files: dict[str, bytes]
    json: Any
    status: int = 0


@dataclass
class StabilityStandIn:
    """The API on 127.0.0.1 in a thread; use as a context manager, then point the client at `base_url`."""

    keys: dict[str, float] = field(default_factory=lambda: {"sk-test": 100.0})  # API key -> credits
    moderated_words: tuple[str, ...] = ("forbidden",)  # prompt -> 403 content_moderation
    filtered_words: tuple[str, ...] = ("filtered",)  # prompt -> 200, blurred, finish reason CONTENT_FILTERED
    rejected_words: tuple[str, ...] = ("nicht-englisch",)  # prompt -> 422 invalid_language
    failing_words: tuple[str, ...] = ("explode",)  # prompt -> 500
    rate_limit: int = 150
    rate_window: float = 10.0
    downscale: int = 16  # answers are the documented sizes divided by this (1:1 -> 64x64), for speed
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> StabilityStandIn:
        """Listen on a free port and serve from a daemon thread."""
        standin = self

        class Handler(_Handler):
            api = standin

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="stability-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> StabilityStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`, in place of https://api.stability.ai."""
        assert self._server, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def credits(self, key: str = "sk-test") -> float:
        """A key's remaining credits."""
        return self.keys[key]

    # -- checks shared by every route -------------------------------------------------------------
    def authorize(self, headers: Message) -> str:
        """The Bearer key, or 401 for a missing or unknown one."""
        value = headers.get("authorization", "")
        if not value:
            raise ApiError(401, "unauthorized", "missing authorization header")
        key = value[7:].strip() if value.lower().startswith("bearer ") else ""
        if key not in self.keys:
            raise ApiError(401, "unauthorized", "Incorrect API key provided")
        return key

    def count_call(self, key: str) -> None:
        """150 requests per 10 s per key, as the docs state; more is a 429."""
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and now - calls[0] > self.rate_window:
                calls.popleft()
            if len(calls) >= self.rate_limit:
                raise ApiError(429, "rate_limit_exceeded", RATE_LIMIT_TEXT.format(n=self.rate_limit, s=self.rate_window))
            calls.append(now)

    def charge(self, key: str, cost: float) -> None:
        """Take the generation's credits; without enough, 402 payment_required."""
        with self._lock:
            if self.keys[key] < cost:
                raise ApiError(402, "payment_required", "You lack sufficient credits to make this request.")
            self.keys[key] -= cost

    def screen(self, prompt: str) -> bool:
        """Moderation and the other prompt-triggered outcomes; True when the output is to be filtered."""
        lowered = prompt.lower()
        if any(word in lowered for word in self.moderated_words):
            raise ApiError(403, "content_moderation", "Your request was flagged by our content moderation system, "
                           "as a result your request was denied and you were not charged.")
        if any(word in lowered for word in self.rejected_words):
            raise ApiError(422, "invalid_language", "English is the only supported language for this service.")
        if any(word in lowered for word in self.failing_words):
            raise ApiError(500, "internal_error", "An unexpected server error has occurred, please try again later.")
        return any(word in lowered for word in self.filtered_words)

    def picture(self, prompt: str, seed: int, size: tuple[int, int], fmt: str, filtered: bool,
                scaled: bool = True) -> bytes:
        """A deterministic image: colours from sha256(prompt, seed), a gradient so rows differ.

        `size` is the documented output size, divided by `downscale` unless `scaled` is False (image-to-image
        answers at its input's size).
        """
        digest = hashlib.sha256(f"{prompt}\x00{seed}".encode()).digest()
        factor = self.downscale if scaled else 1
        width, height = max(8, size[0] // factor), max(8, size[1] // factor)
        top, bottom = Image.new("RGB", (width, height), tuple(digest[0:3])), Image.new("RGB", (width, height),
                                                                                       tuple(digest[3:6]))
        mask = Image.linear_gradient("L").resize((width, height))
        image = Image.composite(bottom, top, mask)
        if filtered:
            image = image.filter(ImageFilter.GaussianBlur(4))  # the API blurs what its filter caught
        out = io.BytesIO()
        image.save(out, format={"jpeg": "JPEG", "webp": "WEBP"}.get(fmt, "PNG"))
        return out.getvalue()


# -- HTTP ------------------------------------------------------------------------------------------
V2_PATH = re.compile(r"^/v2beta/stable-image/generate/(ultra|core|sd3)$")
INPAINT_PATH = "/v2beta/stable-image/edit/inpaint"
V1_PATH = re.compile(r"^/v1/generation/([^/]+)/(text-to-image|image-to-image)$")


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to the stand-in; every error is rendered in its API version's documented shape."""

    api: StabilityStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        return

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        v1 = self.path.startswith("/v1/")
        record = Received(method, self.path, {k.lower(): v for k, v in self.headers.items()}, {}, {}, None)
        self.api.received.append(record)
        try:
            body = self.rfile.read(length) if length else b""  # read even an oversized body: the client is
            if length > MAX_BODY:                              # still sending it, closing now breaks its pipe
                raise ApiError(413, "payload_too_large", f"body: must be at most {MAX_BODY} bytes")
            status, headers, payload = self._route(method, body, record)
        except ApiError as err:
            status, headers, payload = err.status, {"content-type": "application/json"}, _error_body(err, v1)
        record.status = status
        self.send_response(status)
        headers = {"x-request-id": uuid.uuid4().hex, **headers, "content-length": str(len(payload))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _route(self, method: str, body: bytes, record: Received) -> tuple[int, dict[str, str], bytes]:
        if method == "GET" and self.path in ("/v1/user/balance", "/v1/engines/list", "/v1/user/account"):
            key = self.api.authorize(self.headers)
            data: Any = {"/v1/user/balance": {"credits": self.api.credits(key)}, "/v1/engines/list": V1_ENGINES,
                         "/v1/user/account": {"id": f"user-{hashlib.sha1(key.encode()).hexdigest()[:12]}",
                                              "email": "standin@example.invalid", "organizations": []}}[self.path]
            return 200, {"content-type": "application/json"}, json.dumps(data).encode()
        if method == "POST" and (match := V2_PATH.match(self.path)):
            return self._v2(match.group(1), body, record)
        if method == "POST" and self.path == INPAINT_PATH:
            return self._inpaint(body, record)
        if method == "POST" and (match := V1_PATH.match(self.path)):
            return self._v1(match.group(1), match.group(2), body, record)
        raise ApiError(404, "not_found", f"{method} {self.path} does not exist")

    # v2beta -------------------------------------------------------------------------------------
    def _v2(self, service: str, body: bytes, record: Received) -> tuple[int, dict[str, str], bytes]:
        key = self.api.authorize(self.headers)
        self.api.count_call(key)
        accept = (self.headers.get("accept") or "image/*").split(",")[0].strip()
        if accept not in ("image/*", "application/json"):
            raise ApiError(400, "bad_request", "accept: must be image/* or application/json")
        record.fields, record.files = parse_multipart(self.headers.get("content-type", ""), body)
        params = v2_params(service, record.fields, record.files)
        filtered = self.api.screen(params["prompt"])
        self.api.charge(key, SD3_MODELS[params["model"]] if service == "sd3" else V2_COST[service])
        seed = seed_of(params["seed"], 4294967294)
        image = self.api.picture(params["prompt"], seed, params["size"], params["format"], filtered,
                                 params["scaled"])
        reason = "CONTENT_FILTERED" if filtered else "SUCCESS"
        if accept == "application/json":
            data = {"image": base64.b64encode(image).decode(), "finish_reason": reason, "seed": seed}
            return 200, {"content-type": "application/json"}, json.dumps(data).encode()
        return 200, {"content-type": FORMATS[params["format"]], "finish-reason": reason, "seed": str(seed)}, image

    def _inpaint(self, body: bytes, record: Received) -> tuple[int, dict[str, str], bytes]:
        """edit/inpaint: the masked pixels repainted, the others kept; the answer has the input's size."""
        key = self.api.authorize(self.headers)
        self.api.count_call(key)
        accept = (self.headers.get("accept") or "image/*").split(",")[0].strip()
        if accept not in ("image/*", "application/json"):
            raise ApiError(400, "bad_request", "accept: must be image/* or application/json")
        record.fields, record.files = parse_multipart(self.headers.get("content-type", ""), body)
        params = inpaint_params(record.fields, record.files)
        filtered = self.api.screen(params["prompt"])
        self.api.charge(key, V2_COST["inpaint"])
        seed = seed_of(params["seed"], 4294967294)
        painted = Image.open(io.BytesIO(self.api.picture(params["prompt"], seed, params["size"], "png", filtered,
                                                         scaled=False))).convert("RGB")
        original = Image.open(io.BytesIO(record.files["image"])).convert("RGB")
        out = io.BytesIO()
        Image.composite(painted, original, params["mask"]).save(out, format={"jpeg": "JPEG", "webp": "WEBP"}.get(
            params["format"], "PNG"))
        reason = "CONTENT_FILTERED" if filtered else "SUCCESS"
        if accept == "application/json":
            data = {"image": base64.b64encode(out.getvalue()).decode(), "finish_reason": reason, "seed": seed}
            return 200, {"content-type": "application/json"}, json.dumps(data).encode()
        return 200, {"content-type": FORMATS[params["format"]], "finish-reason": reason, "seed": str(seed)}, out.getvalue()

    # v1 -----------------------------------------------------------------------------------------
    def _v1(self, engine: str, kind: str, body: bytes, record: Received) -> tuple[int, dict[str, str], bytes]:
        key = self.api.authorize(self.headers)
        self.api.count_call(key)
        if engine not in {e["id"] for e in V1_ENGINES}:
            raise ApiError(404, "not_found", f"The specified engine (ID {engine}) was not found.")
        accept = self.headers.get("accept") or "application/json"
        if accept not in ("application/json", "image/png"):
            raise ApiError(400, "bad_request", "accept: must be application/json or image/png")
        if kind == "text-to-image":
            record.json = req = json_object(body)
        else:
            record.fields, record.files = parse_multipart(self.headers.get("content-type", ""), body)
            req = v1_form(record.fields, record.files)
        params = v1_params(engine, kind, req, accept)
        filtered = self.api.screen(" ".join(p["text"] for p in params["prompts"] if p["weight"] >= 0))
        self.api.charge(key, 0.2 * params["samples"] * params["steps"] / 30)
        first = seed_of(params["seed"], 4294967295)
        seeds = [(first + i) % 4294967296 for i in range(params["samples"])]
        positive = " ".join(p["text"] for p in params["prompts"] if p["weight"] >= 0)
        images = [self.api.picture(positive, s, params["size"], "png", filtered, params["scaled"]) for s in seeds]
        reason = "CONTENT_FILTERED" if filtered else "SUCCESS"
        if accept == "image/png":
            return 200, {"content-type": "image/png", "finish-reason": reason, "seed": str(seeds[0])}, images[0]
        artifacts = [{"base64": base64.b64encode(img).decode(), "seed": s, "finishReason": reason}
                     for img, s in zip(images, seeds)]
        return 200, {"content-type": "application/json"}, json.dumps({"artifacts": artifacts}).encode()


def _error_body(err: ApiError, v1: bool) -> bytes:
    """v1: `{id, name, message}`; v2beta: `{id, name, errors: [...]}`."""
    body: dict[str, Any] = {"id": uuid.uuid4().hex, "name": err.name}
    if v1:
        body["message"] = "; ".join(err.messages)
    else:
        body["errors"] = err.messages
    return json.dumps(body).encode()


