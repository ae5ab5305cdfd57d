"""A client modelled on seed 000 (Next.js + AWS Amplify: Cognito sign-in, SQS queue, worker, S3 results).

Seed 000 defines no HTTP routes: the document stops at "cd stable-diffusion-demo". What it does say:
- "Authentication: Secure user access with Amazon Cognito": every call carries the user's token
  (here `Authorization: Bearer <token>`; an Amplify REST client sends the raw Cognito JWT instead).
- "Users specify prompts and settings": positive and negative prompts, "image dimensions, sampling
  methods, seed values"; "Tasks are queued in AWS SQS".
- "The frontend polls S3 to fetch and display the generated image when ready": the client knows the
  image's address when it submits, and GETs it until it exists (S3 answers 403/404 for a missing key).
Mapped onto sdedge, the client submits to a job route (sdedge's own `POST /generate/text2img` by
default), reads the image's future address from the answer's `result_url` (a field sdedge does not
have yet: see docs/CLIENTS.md), and polls that address until it answers 200 with an image.
"""

from __future__ import annotations

import time
from typing import Any

from .http import StepFailed, call, join

CLIENT = "seed 000"
POLL_INTERVAL = 1.0  # the seed gives none
NOT_YET = (403, 404)  # what S3 answers for an object that is not there yet
URL_FIELDS = ("result_url",)


def headers(token: str | None) -> dict[str, str]:
    """The signed-in user's credentials on every request."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def refused_without_token(base_url: str, submit_path: str = "/generate/text2img") -> int:
    """A task without credentials must be refused (401), as Cognito-guarded APIs do."""
    reply = call("POST", join(base_url, submit_path), json_body={"prompt": "no credentials"})
    if reply.status != 401:
        raise StepFailed(CLIENT, "submit without a token", f"expected 401, got {reply.short()}", reply)
    return reply.status


def run(base_url: str, *, token: str | None = None, submit_path: str = "/generate/text2img",
        timeout: float = 300.0, interval: float = POLL_INTERVAL, **fields: Any) -> dict[str, Any]:
    """Submit a task with the seed's settings, then poll its result object until the image is there."""
    body = {"prompt": "a castle on a cliff", "negative_prompt": "blurry", "width": 512, "height": 512,
            "sampler": "euler_a", "seed": 7, **fields}
    reply = call("POST", join(base_url, submit_path), json_body=body, headers=headers(token))
    if reply.status not in (200, 201, 202):
        raise StepFailed(CLIENT, f"submit task POST {submit_path}", reply.short(), reply)
    try:
        task = reply.json()
    except ValueError as exc:
        raise StepFailed(CLIENT, f"submit task POST {submit_path}", str(exc), reply) from None
    url = next((task[k] for k in URL_FIELDS if isinstance(task, dict) and isinstance(task.get(k), str)), None)
    if url is None:
        keys = sorted(task) if isinstance(task, dict) else type(task).__name__
        raise StepFailed(CLIENT, "read the result object's address", f"none of {URL_FIELDS} in the answer "
                         f"(keys: {keys}): the client cannot poll for the image", reply)
    deadline = time.monotonic() + timeout
    while True:
        image = call("GET", join(base_url, url), headers=headers(token))
        if image.status == 200 and image.content_type.startswith("image/"):
            return {"task": task, "url": url, "image": image.body}
        if image.status not in NOT_YET:
            raise StepFailed(CLIENT, "poll the result object", f"{url} -> {image.short()}", image)
        if time.monotonic() + interval > deadline:
            raise StepFailed(CLIENT, "poll the result object", f"{url} still {image.status} after {timeout:.0f}s")
        time.sleep(interval)
