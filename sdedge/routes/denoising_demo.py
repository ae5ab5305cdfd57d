"""Seed 003's backend (the denoising demo): `POST /api/request` and `GET /api/status/{transaction_key}`.

A thin adapter over the generation service. The client's transaction key is the job's idempotency key
(scoped to the caller), so resubmitting it returns the same job; jobs run FIFO on the one queue. The
status answer carries the seed's fields and values: `status` (`queued`, `processing`, `done`, `error`),
`steps` (data URLs of the intermediate images so far: five, evenly spaced, as the seed captures steps
5, 10, 15, 20, 25 of 25), `final` (data URL), `seed`, and `error` (a string). The seed's frontend is
served from another origin: list it in CORS_ORIGINS.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, ConfigDict, Field

from sdedge import step_images
from sdedge.auth import caller
from sdedge.job_store import Job, JobStatus
from sdedge.openapi_spec import documented
from sdedge.routes.http_input import json_body
from sdedge.service import GenerationService
from sdedge.services import services

bp = Blueprint("denoising_demo", __name__, url_prefix="/api")

STEP_IMAGES = 5  # the seed keeps five intermediate steps
DemoStatus = Literal["queued", "processing", "done", "error"]


class DemoRequest(BaseModel):
    """POST /api/request: the seed's two fields, plus a few optional generation fields."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    prompt: str = Field(..., description="What to draw.")
    transaction_key: str = Field(..., min_length=1, max_length=200,
                                 description="The client's key (the seed hashes prompt + nonce); the job's name.")
    negative_prompt: str | None = Field(None, description="Optional: what to avoid.")
    seed: int | None = Field(None, description="Optional: the seed (random when absent).")
    steps: int | None = Field(None, ge=1, description="Optional: denoising steps (default DEFAULT_STEPS).")
    width: int | None = Field(None, description="Optional: width (default DEFAULT_SIZE).")
    height: int | None = Field(None, description="Optional: height (default DEFAULT_SIZE).")


class DemoAccepted(BaseModel):
    """The answer to POST /api/request."""

    transaction_key: str
    status: DemoStatus


class DemoStatusResponse(BaseModel):
    """GET /api/status/{transaction_key}: what has been generated so far (absent fields: not yet)."""

    status: DemoStatus
    steps: list[str] = Field(description="Data URLs of the intermediate images so far, oldest first.")
    final: str | None = Field(default=None, description="Data URL of the finished image (status done).")
    seed: int | None = Field(default=None, description="The seed the image was made with (status done).")
    error: str | None = Field(default=None, description="Why it failed or was canceled (status error).")


_STATUS: dict[JobStatus, DemoStatus] = {JobStatus.QUEUED: "queued", JobStatus.RUNNING: "processing",
                                        JobStatus.SUCCEEDED: "done", JobStatus.FAILED: "error",
                                        JobStatus.CANCELED: "error"}


@bp.post("/request")
@documented(request=DemoRequest, responses={200: DemoAccepted, 202: DemoAccepted})
def submit_request() -> tuple[Response, int]:
    """Queue a text-to-image job under the client's transaction key (the same key: the same job)."""
    req = DemoRequest.model_validate(json_body())
    fields = {"negative_prompt": req.negative_prompt, "seed": req.seed, "num_inference_steps": req.steps,
              "width": req.width, "height": req.height}
    body: dict[str, Any] = {"prompt": req.prompt, "step_images": STEP_IMAGES,
                            **{key: value for key, value in fields.items() if value is not None}}
    submission = services().generation.submit("text2img", body, None, req.transaction_key, caller=caller())
    answer = DemoAccepted(transaction_key=req.transaction_key, status=_STATUS[submission.job.status])
    return jsonify(answer.model_dump()), 202 if submission.created else 200


@bp.get("/status/<transaction_key>")
@documented(responses={200: DemoStatusResponse})
def job_status(transaction_key: str) -> Response:
    """The job's status, its intermediate images so far and, once done, the final image and seed."""
    generation = services().generation
    job = generation.get_by_key(transaction_key, caller())
    answer = DemoStatusResponse(status=_STATUS[job.status], steps=_step_images(generation, job))
    if job.status is JobStatus.SUCCEEDED:
        files = generation.result_files(job)
        answer.final = _data_url(generation, files[0]) if files else None
        answer.seed = (job.result or {}).get("seed")
    elif job.status.finished:
        answer.error = (job.error or {}).get("message") or job.status.value
    return jsonify(answer.model_dump(exclude_none=True))


def _step_images(generation: GenerationService, job: Job) -> list[str]:
    """The kept step images: listed by the finished job, or found from a running job's progress."""
    kept = (job.result or {}).get("step_files")
    if kept is None:
        kept = step_images.names_up_to(job.id, job.params, generation.progress(job)["step"])
    return [url for name in kept if (url := _data_url(generation, name))]


def _data_url(generation: GenerationService, filename: str) -> str | None:
    data = generation.read_file(filename)
    return "data:image/png;base64," + base64.b64encode(data).decode() if data else None
