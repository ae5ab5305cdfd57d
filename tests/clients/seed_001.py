"""A client written only from seed 001 (FastAPI + RQ + Redis + Streamlit; local SD or the Stability API).

The seed names routes but no bodies. What it says, and what this client therefore does:
- "The frontend or API POSTs a prompt to FastAPI. FastAPI creates a unique `image_id`": POST a JSON body
  with `prompt` to `/local/images` ("Local SD: Select a model and sampler, then submit a prompt") or
  `/images` ("Remote (Stability API): Enter a prompt"), and read `image_id` from the answer.
- "`/local/models` - lists available local SD models", "`/local/sampler_names` - lists available samplers":
  GET both and pick the first of each for the local request.
- "Users can poll the job status (`/status/{image_id}`)"; "When finished, the image can be downloaded
  via `/image/{image_id}`".

Choices the seed leaves open, made the way its stack would (flagged in docs/CLIENTS.md):
the local request names the model and sampler `model` and `sampler_name` (the A1111 WebUI the worker
calls spells its sampler field so); the status answer carries `status` with RQ's job states
(`queued`, `started`, `deferred`, `scheduled`, `finished`, `failed`, `stopped`, `canceled`); the
listings are JSON lists of names, or of A1111-style objects (`title`/`model_name`/`name`), or an object
wrapping such a list.
"""

from __future__ import annotations

import time
from typing import Any

from .http import Reply, StepFailed, call, join, png_size

CLIENT = "seed 001"
RQ_PENDING = ("queued", "started", "deferred", "scheduled")
RQ_DONE = "finished"
RQ_FAILED = ("failed", "stopped", "canceled")
POLL_INTERVAL = 1.0  # the seed gives none; a Streamlit poll loop typically waits about a second


def list_names(base_url: str, path: str) -> list[str]:
    """GET a listing and reduce it to names, accepting the shapes described in the module docstring."""
    reply = call("GET", join(base_url, path))
    if reply.status != 200:
        raise StepFailed(CLIENT, f"GET {path}", reply.short(), reply)
    try:
        body = reply.json()
    except ValueError as exc:
        raise StepFailed(CLIENT, f"GET {path}", str(exc), reply) from None
    if isinstance(body, dict):
        lists = [value for value in body.values() if isinstance(value, list)]
        body = lists[0] if len(lists) == 1 else None
    if not isinstance(body, list) or not body:
        raise StepFailed(CLIENT, f"GET {path}", f"not a non-empty list: {reply.short()}", reply)
    names = [_name(item) for item in body]
    if any(name is None for name in names):
        raise StepFailed(CLIENT, f"GET {path}", f"items without a name: {reply.short()}", reply)
    return [name for name in names if name is not None]


def _name(item: Any) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in ("title", "model_name", "name", "id"):
            if isinstance(item.get(key), str):
                return str(item[key])
    return None


def submit(base_url: str, path: str, body: dict[str, Any]) -> str:
    """POST the prompt; the answer carries the new `image_id`."""
    reply = call("POST", join(base_url, path), json_body=body)
    if reply.status not in (200, 201, 202):
        raise StepFailed(CLIENT, f"POST {path}", reply.short(), reply)
    try:
        answer = reply.json()
    except ValueError as exc:
        raise StepFailed(CLIENT, f"POST {path}", str(exc), reply) from None
    image_id = answer.get("image_id") if isinstance(answer, dict) else None
    if not isinstance(image_id, str) or not image_id:
        raise StepFailed(CLIENT, f"read image_id from POST {path}", reply.short(), reply)
    return image_id


def wait(base_url: str, image_id: str, *, timeout: float = 300.0, interval: float = POLL_INTERVAL) -> dict[str, Any]:
    """GET /status/{image_id} until RQ's `finished`; a failed state raises."""
    deadline = time.monotonic() + timeout
    while True:
        reply = call("GET", join(base_url, f"/status/{image_id}"))
        body = _status_body(reply)
        status = body["status"]
        if status == RQ_DONE:
            return body
        if status in RQ_FAILED:
            raise StepFailed(CLIENT, "poll /status/{image_id}", f"job ended {status!r}: {reply.short()}", reply)
        if status not in RQ_PENDING:
            raise StepFailed(CLIENT, "poll /status/{image_id}", f"status {status!r} is not an RQ job state", reply)
        if time.monotonic() + interval > deadline:
            raise StepFailed(CLIENT, "poll /status/{image_id}", f"still {status!r} after {timeout:.0f}s", reply)
        time.sleep(interval)


def _status_body(reply: Reply) -> dict[str, Any]:
    if reply.status != 200:
        raise StepFailed(CLIENT, "poll /status/{image_id}", reply.short(), reply)
    try:
        body = reply.json()
    except ValueError as exc:
        raise StepFailed(CLIENT, "poll /status/{image_id}", str(exc), reply) from None
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise StepFailed(CLIENT, "poll /status/{image_id}", f"no status string: {reply.short()}", reply)
    return body


def download(base_url: str, image_id: str) -> bytes:
    """GET /image/{image_id}: the image itself."""
    reply = call("GET", join(base_url, f"/image/{image_id}"))
    if reply.status != 200 or not reply.content_type.startswith("image/"):
        raise StepFailed(CLIENT, "GET /image/{image_id}", reply.short(), reply)
    return reply.body


def run(base_url: str, *, remote: bool = False, prompt: str = "a lighthouse at dusk", timeout: float = 300.0,
        interval: float = POLL_INTERVAL, **fields: Any) -> dict[str, Any]:
    """Local (default) or Stability path: list, submit, poll, download; fields are added to the POST body."""
    body: dict[str, Any] = {"prompt": prompt}
    models = samplers = None
    if not remote:
        models = list_names(base_url, "/local/models")
        samplers = list_names(base_url, "/local/sampler_names")
        body.update(model=models[0], sampler_name=samplers[0])
    body.update(fields)
    path = "/images" if remote else "/local/images"
    image_id = submit(base_url, path, body)
    status = wait(base_url, image_id, timeout=timeout, interval=interval)
    image = download(base_url, image_id)
    size = png_size(image) if image.startswith(b"\x89PNG") else None
    return {"image_id": image_id, "status": status, "image": image, "size": size, "models": models,
            "samplers": samplers}
