"""A client written only from seed 003 (the denoising demo: a Worker-hosted page calling a local backend).

The seed's frontend, replayed as the browser runs it from another origin:
- "hashes the input (prompt + nonce) to form a transaction key, sends `{ prompt, transaction_key }` to
  `POST /api/request`"; "response is `{ "transaction_key", "status": "queued" }`".
- "then polls `GET /api/status/{transaction_key}` every 1.5 s until `status === "done"`" (or `"error"`),
  reading `{ "status", "steps", "final?", "seed?", "error?" }` and "updating the UI with `steps` and
  `final` as they become available".
- "The browser calls your backend URL directly" from the Worker's origin (`http://localhost:8787` in
  the seed), "and your backend must ... allow CORS": a JSON POST is preflighted (`OPTIONS` with
  `Access-Control-Request-Method: POST` and `-Headers: content-type`), and every answer must carry
  `Access-Control-Allow-Origin` for the page to read it.
The seed does not say what one entry of `steps` or `final` holds: this client accepts an image string
(data URL, bare base64 or a URL on the backend) or an object holding one under `image`/`url`/`data`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from .http import Reply, StepFailed, call, decode_image_value, join

CLIENT = "seed 003"
FRONTEND_ORIGIN = "http://localhost:8787"  # the seed's `npm run dev` address
POLL_INTERVAL = 1.5


def transaction_key(prompt: str, nonce: str | None = None) -> str:
    """The frontend's key: a hash of prompt + nonce (SHA-256 hex; the seed does not name the hash)."""
    return hashlib.sha256((prompt + (nonce or secrets.token_hex(8))).encode()).hexdigest()


def check_cors(reply: Reply, origin: str, step: str) -> None:
    """The browser only hands the page an answer whose Access-Control-Allow-Origin admits its origin."""
    allowed = reply.headers.get("access-control-allow-origin")
    if allowed not in ("*", origin):
        raise StepFailed(CLIENT, step, f"Access-Control-Allow-Origin is {allowed!r} for origin {origin}: the "
                         "browser blocks the answer", reply)


def preflight(base_url: str, origin: str) -> Reply:
    """The browser's OPTIONS before a cross-origin JSON POST to /api/request."""
    reply = call("OPTIONS", join(base_url, "/api/request"), headers={
        "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    step = "CORS preflight OPTIONS /api/request"
    if not 200 <= reply.status < 300:
        raise StepFailed(CLIENT, step, reply.short(), reply)
    check_cors(reply, origin, step)
    methods = reply.headers.get("access-control-allow-methods", "")
    headers = reply.headers.get("access-control-allow-headers", "").lower()
    if "POST" not in methods.upper() and methods != "*":
        raise StepFailed(CLIENT, step, f"Access-Control-Allow-Methods {methods!r} lacks POST", reply)
    if "content-type" not in headers and headers != "*":
        raise StepFailed(CLIENT, step, f"Access-Control-Allow-Headers {headers!r} lacks content-type", reply)
    return reply


def submit(base_url: str, prompt: str, key: str, origin: str) -> dict[str, Any]:
    """POST /api/request {prompt, transaction_key} -> {transaction_key, status: "queued"}."""
    preflight(base_url, origin)
    reply = call("POST", join(base_url, "/api/request"), json_body={"prompt": prompt, "transaction_key": key},
                 headers={"Origin": origin})
    step = "POST /api/request"
    if not 200 <= reply.status < 300:
        raise StepFailed(CLIENT, step, reply.short(), reply)
    check_cors(reply, origin, step)
    body = _json_object(reply, step)
    if body.get("transaction_key") != key or body.get("status") != "queued":
        raise StepFailed(CLIENT, step, f"expected {{transaction_key: {key[:12]}..., status: 'queued'}}, got "
                         f"{reply.short()}", reply)
    return body


def wait(base_url: str, key: str, origin: str, *, timeout: float = 300.0,
         interval: float = POLL_INTERVAL) -> tuple[dict[str, Any], list[int]]:
    """Poll /api/status/{key} until done or error; also returns len(steps) as seen at each poll."""
    deadline = time.monotonic() + timeout
    seen: list[int] = []
    step = "poll GET /api/status/{transaction_key}"
    while True:
        reply = call("GET", join(base_url, f"/api/status/{key}"), headers={"Origin": origin})
        if reply.status != 200:
            raise StepFailed(CLIENT, step, reply.short(), reply)
        check_cors(reply, origin, step)
        body = _json_object(reply, step)
        steps = body.get("steps")
        if not isinstance(steps, list):
            raise StepFailed(CLIENT, step, f"steps is {type(steps).__name__}, expected a list", reply)
        seen.append(len(steps))
        if body.get("status") == "done":
            return body, seen
        if body.get("status") == "error":
            raise StepFailed(CLIENT, step, f"status 'error': {body.get('error')!r}", reply)
        if time.monotonic() + interval > deadline:
            raise StepFailed(CLIENT, step, f"still {body.get('status')!r} after {timeout:.0f}s", reply)
        time.sleep(interval)


def image_of(base_url: str, value: Any, origin: str) -> bytes:
    """The bytes of one `steps` entry or of `final`, whichever of the accepted shapes it has."""
    if isinstance(value, dict):
        value = next((value[k] for k in ("image", "url", "data", "final") if isinstance(value.get(k), str)), None)
    if not isinstance(value, str) or not value:
        raise ValueError(f"no image in {str(value)[:80]!r}")
    if value.startswith(("http://", "https://", "/")):
        reply = call("GET", join(base_url, value), headers={"Origin": origin})
        if reply.status != 200 or not reply.content_type.startswith("image/"):
            raise ValueError(f"{value} -> {reply.short()}")
        return reply.body
    return decode_image_value(value)


def run(base_url: str, *, prompt: str = "a red fox in the snow", origin: str = FRONTEND_ORIGIN,
        timeout: float = 300.0, interval: float = POLL_INTERVAL) -> dict[str, Any]:
    """The Generate button: key, preflight, submit, poll until done; the final image and the steps seen."""
    key = transaction_key(prompt)
    submit(base_url, prompt, key, origin)
    body, seen = wait(base_url, key, origin, timeout=timeout, interval=interval)
    try:
        final = image_of(base_url, body.get("final"), origin)
        steps = [image_of(base_url, entry, origin) for entry in body["steps"]]
    except ValueError as exc:
        raise StepFailed(CLIENT, "read final and steps", str(exc)) from None
    if not isinstance(body.get("seed"), int):
        raise StepFailed(CLIENT, "read seed", f"seed is {body.get('seed')!r}")
    return {"transaction_key": key, "status": body, "final": final, "steps": steps, "steps_seen": seen,
            "seed": body["seed"]}


def _json_object(reply: Reply, step: str) -> dict[str, Any]:
    try:
        body = reply.json()
    except ValueError as exc:
        raise StepFailed(CLIENT, step, str(exc), reply) from None
    if not isinstance(body, dict):
        raise StepFailed(CLIENT, step, f"not a JSON object: {reply.short()}", reply)
    return body
