"""Seed 001's API (the FastAPI + RQ demo): local generation by `image_id`, its status and its image.

A thin adapter over the generation service. The seed names its routes, not their bodies; sdedge answers
as that stack would (its worker called an AUTOMATIC1111 container, so requests use A1111's field names,
and statuses are RQ's job states):

    GET  /local/models           names of the models this server runs
    GET  /local/sampler_names    sampler names (A1111's spelling)
    POST /local/images           {"prompt", "model"?, "sampler_name"?, ...} -> 202 {"image_id", "status": "queued"}
    GET  /status/{image_id}      {"image_id", "status": queued|started|finished|failed|canceled, ...}
    GET  /image/{image_id}       the PNG, once finished (404 before)
    POST /images                 the seed's Stability AI path: the same job on a REMOTE_ENGINES entry of
                                 kind "stability" (404 naming the setting when there is none)
"""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, jsonify, send_file
from pydantic import BaseModel, ConfigDict, Field, RootModel

from sdedge.auth import caller
from sdedge.errors import InvalidRequest, NotFound, detail
from sdedge.job_store import JobStatus
from sdedge.openapi_spec import documented
from sdedge.remote.models import remote_models
from sdedge.routes.http_input import json_body
from sdedge.samplers import SAMPLERS, canonical_sampler, from_a1111
from sdedge.services import Services, services

bp = Blueprint("rq_demo", __name__)

RqStatus = Literal["queued", "started", "finished", "failed", "canceled"]
_STATUS: dict[JobStatus, RqStatus] = {JobStatus.QUEUED: "queued", JobStatus.RUNNING: "started",
                                      JobStatus.SUCCEEDED: "finished", JobStatus.FAILED: "failed",
                                      JobStatus.CANCELED: "canceled"}


class _ImageRequest(BaseModel):
    """The fields both of the seed's submission routes take."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    prompt: str = Field(..., description="What to draw.")
    negative_prompt: str = Field("", description="What to avoid.")
    width: int | None = Field(None, description="Width (default DEFAULT_SIZE).")
    height: int | None = Field(None, description="Height (default DEFAULT_SIZE).")
    seed: int | None = Field(None, description="Seed; -1 or absent: random.")


class LocalImageRequest(_ImageRequest):
    """POST /local/images: a prompt and, optionally, a model and sampler from the listings."""

    model: str | None = Field(None, description="One of GET /local/models (default: the server's model).")
    sampler_name: str | None = Field(None, description="One of GET /local/sampler_names (default: DEFAULT_SAMPLER).")
    steps: int | None = Field(None, ge=1, description="Denoising steps (default DEFAULT_STEPS).")
    cfg_scale: float | None = Field(None, ge=0, le=30, description="Guidance scale (default DEFAULT_GUIDANCE_SCALE).")


class RemoteImageRequest(_ImageRequest):
    """POST /images: a prompt for the Stability AI engine (a REMOTE_ENGINES entry of kind "stability");
    the API answers at the documented aspect ratio nearest to width x height."""

    model: str | None = Field(None, description="A Stability REMOTE_ENGINES id (default: the first one).")


class Queued(BaseModel):
    """The answer to POST /local/images."""

    image_id: str
    status: RqStatus


class ImageStatus(BaseModel):
    """GET /status/{image_id}."""

    image_id: str
    status: RqStatus
    progress: float = Field(description="0..1.")
    image_url: str | None = Field(default=None, description="GET /image/{image_id}, once finished.")
    error: str | None = Field(default=None, description="Why it failed or was canceled.")


NameList = RootModel[list[str]]


@bp.get("/local/models")
@documented(responses={200: NameList})
def local_models() -> Response:
    """The models this server runs, by name (what POST /local/images takes as `model`)."""
    return jsonify(_model_names(services()))


@bp.get("/local/sampler_names")
@documented(responses={200: NameList})
def sampler_names() -> Response:
    """The samplers, in AUTOMATIC1111's spelling (what POST /local/images takes as `sampler_name`)."""
    return jsonify([sampler.a1111_name for sampler in SAMPLERS.values()])


@bp.post("/local/images")
@documented(request=LocalImageRequest, responses={202: Queued})
def local_image() -> tuple[Response, int, dict[str, str]]:
    """Queue a text-to-image job; its id is the image_id to poll."""
    svc = services()
    req = LocalImageRequest.model_validate(json_body())
    if req.model is not None and req.model not in _model_names(svc):
        message = f"unknown model {req.model!r}; GET /local/models lists {_model_names(svc)}"
        raise InvalidRequest(message, detail("model", message, "enum", valid=_model_names(svc)))
    return _queue(svc, req, {"sampler": _sampler(req.sampler_name, svc), "num_inference_steps": req.steps,
                             "guidance_scale": req.cfg_scale, "model": req.model})


@bp.post("/images")
@documented(request=RemoteImageRequest, responses={202: Queued})
def remote_image() -> tuple[Response, int, dict[str, str]]:
    """Queue a text-to-image job on the Stability AI engine; its id is the image_id to poll."""
    svc = services()
    req = RemoteImageRequest.model_validate(json_body())
    engines = [m.id for m in remote_models(svc.settings) if m.kind == "stability"]
    if not engines:
        raise NotFound('this server has no Stability AI engine: add {"id": "stability", "kind": "stability", "url": '
                         '"https://api.stability.ai"} to REMOTE_ENGINES and set STABILITY_API_KEY (README: remote '
                         'engines), or use POST /local/images')
    if req.model is not None and req.model not in engines:
        message = f"unknown Stability engine {req.model!r}; REMOTE_ENGINES has {engines}"
        raise InvalidRequest(message, detail("model", message, "enum", valid=engines))
    return _queue(svc, req, {"model": req.model or engines[0]})


@bp.get("/status/<image_id>")
@documented(responses={200: ImageStatus})
def image_status(image_id: str) -> Response:
    """The job's state in RQ's words, its progress, and where the image is once finished."""
    generation = services().generation
    job = generation.get(image_id, caller())
    status = ImageStatus(image_id=job.id, status=_STATUS[job.status],
                         progress=round(generation.progress(job)["percent"] / 100, 4))
    if job.status is JobStatus.SUCCEEDED:
        status.image_url = f"/image/{job.id}"
    elif job.status.finished:
        status.error = (job.error or {}).get("message") or job.status.value
    return jsonify(status.model_dump())


@bp.get("/image/<image_id>")
def image_file(image_id: str) -> Response:
    """The finished image as a PNG; 404 while it is not ready (GET /status/{image_id} says why)."""
    generation = services().generation
    job = generation.get(image_id, caller())
    files = generation.result_files(job) if job.status is JobStatus.SUCCEEDED else []
    path = generation.file_path(files[0], caller()) if files else None
    if path is None:
        raise NotFound(f"image {image_id} is not ready: its job is {_STATUS[job.status]}")
    return send_file(path, mimetype="image/png", max_age=86400)


def _queue(svc: Services, req: _ImageRequest, fields: dict[str, object]) -> tuple[Response, int, dict[str, str]]:
    """Submit a text-to-image job from the shared fields and the route's own; answer 202 with its image_id."""
    body: dict[str, object] = {"prompt": req.prompt, "negative_prompt": req.negative_prompt}
    given = {"width": req.width, "height": req.height, "seed": req.seed, **fields}
    body.update({key: value for key, value in given.items() if value is not None})
    job = svc.generation.submit("text2img", body, caller=caller()).job
    answer = Queued(image_id=job.id, status=_STATUS[job.status])
    return jsonify(answer.model_dump()), 202, {"Location": f"/status/{job.id}"}


def _model_names(svc: Services) -> list[str]:
    """The names GET /local/models lists and `model` takes: the installed models, the default first."""
    return [m.id for m in sorted(svc.loader.library.models(), key=lambda m: not m.is_default) if m.installed]


def _sampler(name: str | None, svc: Services) -> str:
    """Our sampler for an A1111 (or our own) name; an unknown one is a 400 naming the valid ones."""
    if name is None:
        return svc.settings.default_sampler
    ours, exact = from_a1111(name, svc.settings.default_sampler)
    if not exact and canonical_sampler(name) is None:
        valid = [sampler.a1111_name for sampler in SAMPLERS.values()]
        message = f"unknown sampler_name {name!r}; GET /local/sampler_names lists {valid}"
        raise InvalidRequest(message, detail("sampler_name", message, "enum", valid=valid))
    return ours
