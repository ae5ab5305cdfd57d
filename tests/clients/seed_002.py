"""A client written only from seed 002 (the Bun "Image Generation API": modes, jobs, queue, models).

It follows the seed's examples: `POST /generate/<mode>` with the seed's camelCase fields, then the
"Python Client" loop: `GET /jobs/{id}` every 2 s until `status == "completed"` (raise with `job["error"]`
on `"failed"`), reading `result.images[0]` ("data:image/png;base64,..." in the seed's JSON), plus
`GET /jobs?status=`, `GET /queue/status`, `POST /jobs/:id/cancel`, `GET /models` and the error bodies
`{"error": "Prompt is required"}` / `{"error": "Job not found"}`. Field lists are in docs/CLIENTS.md.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from .http import Reply, StepFailed, call, data_url, decode_image_value, join, png

CLIENT = "seed 002"
SEED_STATUSES = ("queued", "processing", "completed", "failed")  # "status: Filter by status (...)"
POLL_INTERVAL = 2.0  # `time.sleep(2)` / `setTimeout(r, 2000)` in the seed's clients
MODES = ("text2img", "img2img", "inpaint", "style-transfer")
CREATED_FIELDS = ("id", "type", "status", "request", "createdAt", "progress")  # "Response (202 Accepted)"
DONE_FIELDS = ("id", "type", "status", "request", "result", "createdAt", "startedAt", "completedAt", "progress")
RESULT_FIELDS = ("images", "seed", "parameters", "timeTaken")
QUEUE_FIELDS = ("queuedJobs", "processingJobs", "completedJobs", "failedJobs", "averageProcessingTime")
MODEL_FIELDS = ("id", "name", "description", "type", "loaded", "version")


def example_body(mode: str, size: int = 64) -> dict[str, Any]:
    """The seed's request example for a mode, with small images (the seed's are elided data URLs)."""
    image, mask = data_url(png(size, size)), data_url(png(size, size, (255, 255, 255)))
    return {
        "text2img": {"prompt": "A beautiful sunset over mountains, photorealistic, 4k",
                     "negativePrompt": "blurry, low quality, distorted", "width": 512, "height": 512, "steps": 30,
                     "guidanceScale": 7.5, "seed": 42, "sampler": "euler_a", "model": "stable-diffusion-v1.5"},
        "img2img": {"prompt": "Turn this into a watercolor painting", "initImage": image, "strength": 0.75,
                    "width": 512, "height": 512, "steps": 30, "guidanceScale": 7.5},
        "inpaint": {"prompt": "A red sports car", "image": image, "mask": mask, "inpaintingStrength": 0.9,
                    "steps": 40},
        "style-transfer": {"contentImage": image, "styleImage": data_url(png(size, size, (20, 40, 220))),
                           "styleStrength": 0.7, "contentStrength": 0.3},
    }[mode]


def submit(base_url: str, mode: str = "text2img", **fields: Any) -> dict[str, Any]:
    """POST /generate/<mode>; the seed answers 202 with the queued job."""
    body = {**example_body(mode), **fields}
    reply = call("POST", join(base_url, f"/generate/{mode}"), json_body=body)
    job = _json_object(reply, f"POST /generate/{mode}")
    if reply.status != 202:
        raise StepFailed(CLIENT, f"POST /generate/{mode}", f"expected 202 Accepted, got {reply.short()}", reply)
    missing = [name for name in CREATED_FIELDS if name not in job]
    if missing:
        raise StepFailed(CLIENT, f"read the 202 job of /generate/{mode}", f"missing {missing}", reply)
    if job["status"] != "queued" or job["progress"] != 0 or job["type"] != mode:
        raise StepFailed(CLIENT, f"read the 202 job of /generate/{mode}",
                         f"status={job['status']!r} progress={job['progress']!r} type={job['type']!r}; the seed "
                         "answers status 'queued', progress 0 and the mode as type", reply)
    return job


def wait(base_url: str, job_id: str, *, timeout: float = 300.0, interval: float = POLL_INTERVAL) -> dict[str, Any]:
    """The seed's poll loop: GET /jobs/{id} until completed; failed raises with the job's error string."""
    deadline = time.monotonic() + timeout
    while True:
        reply = call("GET", join(base_url, f"/jobs/{job_id}"))
        job = _json_object(reply, "GET /jobs/{id}")
        status = job.get("status")
        if status == "completed":
            return job
        if status == "failed":
            error = job.get("error")
            if not isinstance(error, str):
                raise StepFailed(CLIENT, "raise Exception(job['error'])", f"error is {type(error).__name__}, the "
                                 f"seed's is a string: {error!r}", reply)
            raise StepFailed(CLIENT, "poll until completed", f"job failed: {error}", reply)
        if status not in SEED_STATUSES:
            raise StepFailed(CLIENT, "poll until completed", f"status {status!r} is none of the seed's "
                             f"{SEED_STATUSES}: the seed's loop would spin forever", reply)
        if time.monotonic() + interval > deadline:
            raise StepFailed(CLIENT, "poll until completed", f"still {status!r} after {timeout:.0f}s", reply)
        time.sleep(interval)


def read_result(job: dict[str, Any]) -> bytes:
    """The completed job's fields, and the PNG behind result.images[0] (a data URL in the seed)."""
    missing = [name for name in DONE_FIELDS if name not in job]
    result = job.get("result") or {}
    missing += [f"result.{name}" for name in RESULT_FIELDS if name not in result]
    if missing:
        raise StepFailed(CLIENT, "read the completed job", f"missing {missing}")
    if job["progress"] != 100 or not isinstance(result["timeTaken"], (int, float)):
        raise StepFailed(CLIENT, "read the completed job", f"progress={job['progress']!r} (seed: 100), "
                         f"timeTaken={result['timeTaken']!r} (seed: milliseconds)")
    first = result["images"][0] if result["images"] else None
    if not isinstance(first, str) or not first.startswith("data:image/"):
        raise StepFailed(CLIENT, "read result.images[0]", f"not a data URL: {str(first)[:80]!r}")
    try:
        return decode_image_value(first)
    except (ValueError, binascii.Error) as exc:
        raise StepFailed(CLIENT, "decode result.images[0]", str(exc)) from None


def python_example_decodes(value: str) -> bool:
    """Whether the seed's literal Python example, `base64.b64decode(images[0])`, yields a PNG from value."""
    try:
        return base64.b64decode(value).startswith(b"\x89PNG")
    except (ValueError, binascii.Error):
        return False


def run(base_url: str, *, mode: str = "text2img", timeout: float = 300.0, interval: float = POLL_INTERVAL,
        **fields: Any) -> dict[str, Any]:
    """Submit one job of `mode`, poll it to completed, decode its image; fields override the seed example."""
    job = submit(base_url, mode, **fields)
    done = wait(base_url, job["id"], timeout=timeout, interval=interval)
    return {"job": done, "image": read_result(done)}


def list_jobs(base_url: str, status: str = "completed") -> list[dict[str, Any]]:
    """GET /jobs?status=<seed status>: {"jobs": [{id, type, status, createdAt}]}."""
    reply = call("GET", join(base_url, f"/jobs?status={status}"))
    body = _json_object(reply, f"GET /jobs?status={status}")
    jobs = body.get("jobs")
    if reply.status != 200 or not isinstance(jobs, list):
        raise StepFailed(CLIENT, f"GET /jobs?status={status}", reply.short(), reply)
    for job in jobs:
        if job.get("status") != status or not all(k in job for k in ("id", "type", "createdAt")):
            raise StepFailed(CLIENT, f"GET /jobs?status={status}", f"item {str(job)[:200]}", reply)
    return jobs


def queue_status(base_url: str) -> dict[str, Any]:
    """GET /queue/status with the seed's five numbers (averageProcessingTime in ms)."""
    reply = call("GET", join(base_url, "/queue/status"))
    body = _json_object(reply, "GET /queue/status")
    bad = [k for k in QUEUE_FIELDS if not isinstance(body.get(k), (int, float))]
    if reply.status != 200 or bad:
        raise StepFailed(CLIENT, "GET /queue/status", f"not numbers: {bad}; {reply.short()}", reply)
    return body


def cancel(base_url: str, job_id: str) -> dict[str, Any]:
    """POST /jobs/:id/cancel answers {"success": true}."""
    reply = call("POST", join(base_url, f"/jobs/{job_id}/cancel"))
    body = _json_object(reply, "POST /jobs/:id/cancel")
    if reply.status != 200 or body.get("success") is not True:
        raise StepFailed(CLIENT, "POST /jobs/:id/cancel", reply.short(), reply)
    return body


def models(base_url: str) -> list[dict[str, Any]]:
    """GET /models: {"models": [{id, name, description, type, loaded, version}]}."""
    reply = call("GET", join(base_url, "/models"))
    body = _json_object(reply, "GET /models")
    items = body.get("models")
    if reply.status != 200 or not isinstance(items, list) or not items:
        raise StepFailed(CLIENT, "GET /models", reply.short(), reply)
    for item in items:
        missing = [k for k in MODEL_FIELDS if k not in item]
        if missing:
            raise StepFailed(CLIENT, "GET /models", f"model {item.get('id')!r} lacks {missing}", reply)
    return items


def errors(base_url: str) -> dict[str, str]:
    """The seed's error bodies: `{"error": "<message string>"}` for a missing prompt and an unknown job."""
    found = {}
    for step, reply in (("POST /generate/text2img without prompt",
                         call("POST", join(base_url, "/generate/text2img"), json_body={"steps": 30})),
                        ("GET /jobs/<unknown>", call("GET", join(base_url, "/jobs/job_0_nosuchjob")))):
        body = _json_object(reply, step)
        if reply.status < 400 or not isinstance(body.get("error"), str):
            raise StepFailed(CLIENT, step, f"the seed answers {{\"error\": \"...\"}}; got {reply.short()}", reply)
        found[step] = body["error"]
    return found


def _json_object(reply: Reply, step: str) -> dict[str, Any]:
    try:
        body = reply.json()
    except ValueError as exc:
        raise StepFailed(CLIENT, step, str(exc), reply) from None
    if not isinstance(body, dict):
        raise StepFailed(CLIENT, step, f"not a JSON object: {reply.short()}", reply)
    return body
