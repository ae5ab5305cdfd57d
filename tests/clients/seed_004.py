"""A client written only from seed 004 (the OpenVINO `POST /image` service).

What it relies on, with the seed's words:
- `POST /image` with `Content-Type: application/json` and the example body's fields
  (`prompt`, `negative_prompt`, `num_inference_steps`, `guidance_scale`, `width`, `height`).
- "Successful responses contain the generated image URLs along with metadata": it reads `urls[0]`
  (a relative link in the seed's example, `"/static/mock-image.svg"`) and downloads it; it also reads
  `job_id`, `provider`, `used_mocks`, `created_at` from the example answer.
- `REQUEST_TIMEOUT` (45.0): "HTTP timeout used by the client in seconds": the client's own timeout.
- `GET /health`: "report service readiness, cache status, and runtime configuration".
"""

from __future__ import annotations

from typing import Any

from .http import Reply, StepFailed, call, join

CLIENT = "seed 004"
REQUEST_TIMEOUT = 45.0  # the seed's default; the client's HTTP timeout, not the server's patience
EXAMPLE_BODY: dict[str, Any] = {
    "prompt": "Moody watercolor of neon-lit Kyoto streets at night",
    "negative_prompt": "low detail, blurry",
    "num_inference_steps": 28,
    "guidance_scale": 8.0,
    "width": 512,
    "height": 512,
}
EXAMPLE_FIELDS = ("job_id", "urls", "provider", "used_mocks", "created_at")


def run(base_url: str, *, timeout: float = REQUEST_TIMEOUT, **fields: Any) -> dict[str, Any]:
    """POST /image with the seed's example body (fields override it), read urls[0], download it."""
    body = {**EXAMPLE_BODY, **fields}
    try:
        reply = call("POST", join(base_url, "/image"), json_body=body, timeout=timeout)
    except TimeoutError as exc:
        raise StepFailed(CLIENT, "POST /image", f"no answer within REQUEST_TIMEOUT={timeout}s ({exc})") from None
    answer = _answer(reply)
    urls = answer.get("urls")
    if not isinstance(urls, list) or not urls or not isinstance(urls[0], str):
        raise StepFailed(CLIENT, "read urls[0]", f"HTTP {reply.status} without urls; keys {sorted(answer)}: "
                         f"{reply.short()}", reply)
    missing = [name for name in EXAMPLE_FIELDS if name not in answer]
    if missing:
        raise StepFailed(CLIENT, "read the example answer's metadata", f"missing {missing}", reply)
    image = call("GET", join(base_url, urls[0]), timeout=timeout)
    if image.status != 200 or not image.content_type.startswith("image/"):
        raise StepFailed(CLIENT, "download urls[0]", f"{urls[0]} -> {image.short()}", image)
    return {"status": reply.status, "answer": answer, "url": urls[0], "image": image.body,
            "content_type": image.content_type}


def _answer(reply: Reply) -> dict[str, Any]:
    if reply.status == 202:
        raise StepFailed(CLIENT, "read urls[0]", f"HTTP 202: the server stopped waiting and sent no urls: "
                         f"{reply.short()}", reply)
    if reply.status != 200:
        raise StepFailed(CLIENT, "POST /image", f"expected 200 with urls, got {reply.short()}", reply)
    try:
        answer = reply.json()
    except ValueError as exc:
        raise StepFailed(CLIENT, "POST /image", str(exc), reply) from None
    if not isinstance(answer, dict):
        raise StepFailed(CLIENT, "POST /image", f"answer is not an object: {reply.short()}", reply)
    return answer


def health(base_url: str, *, timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
    """GET /health: readiness as a JSON object (the seed names no fields, so none are read)."""
    reply = call("GET", join(base_url, "/health"), timeout=timeout)
    if reply.status != 200 or reply.content_type != "application/json":
        raise StepFailed(CLIENT, "GET /health", reply.short(), reply)
    body = reply.json()
    if not isinstance(body, dict):
        raise StepFailed(CLIENT, "GET /health", "not a JSON object", reply)
    return body
