"""The core HTTP API: POST /image, health, samplers, modes, LoRAs, presets and the generated files (models: routes/models.py)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, send_file
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sdedge import generation_extras, lora_listing, server_status
from sdedge.auth import caller, health_view
from sdedge.errors import InvalidRequest, NotFound, detail, error_for
from sdedge.job_store import Job, JobStatus
from sdedge.openapi_spec import documented
from sdedge.request_schemas import ImageResponse
from sdedge.response_schemas import Alive, Health, LoraList, ModeList, PresetList, Ready, SamplerList
from sdedge.routes.http_input import idempotency_key, preferences, query_args, request_body
from sdedge.service import GenerationService, iso
from sdedge.services import services

bp = Blueprint("api", __name__)


class ImageCallOptions(BaseModel):
    """How POST /image answers: the `respond_async` body field, or the Prefer header (RFC 7240)."""

    model_config = ConfigDict(allow_inf_nan=False)

    respond_async: bool = Field(False, description="Answer 202 with the job at once (as `Prefer: respond-async`).")
    wait: float | None = Field(None, ge=0, description="`Prefer: wait=N`: wait at most N seconds, then 202 with the job.")


@bp.post("/image")
def generate_image() -> tuple[Response, int, dict[str, str]]:
    """Queue a job (text2img, or `mode`: img2img, inpaint, style-transfer) and answer with its urls once done.

    The wait is bounded by QUEUE_WAIT_TIMEOUT (to start) and JOB_TIMEOUT (to run); past either the answer
    is 202 with the job, which keeps running. `Prefer: respond-async` (or `respond_async: true`) answers
    202 at once, `Prefer: wait=N` after at most N seconds.
    """
    svc = services()
    body, files = request_body()
    mode = str(body.pop("mode", "text2img"))
    options = _call_options(body)
    applied = {}
    if options.respond_async:
        job = svc.generation.submit(mode, body, files, idempotency_key(), caller=caller()).job
        applied["Preference-Applied"] = "respond-async"
    else:
        job = svc.generation.run(mode, body, files, idempotency_key(), caller=caller(), patience=options.wait,
                                 keep_on_give_up=True)
        if options.wait is not None:
            applied["Preference-Applied"] = f"wait={options.wait:g}"
    if job.status is JobStatus.SUCCEEDED:
        return jsonify(image_response(svc.generation, job)), 200, applied
    if job.status.finished:
        raise error_for(job.error or {})
    status_url = svc.generation.job_url(job.id)
    accepted = {**svc.generation.view(job), "job_id": job.id, "status_url": status_url,
                "events_url": status_url + "/events"}
    return jsonify(accepted), 202, {**applied, "Location": status_url, "Retry-After": "1"}


def _call_options(body: dict[str, Any]) -> ImageCallOptions:
    """The answer's options from the body field and the Prefer header (the body field wins)."""
    prefer = preferences()
    wait = prefer.get("wait")
    values: dict[str, Any] = {"respond_async": "respond-async" in prefer and not wait,
                              "wait": wait if wait else None}
    if "respond_async" in body:
        values["respond_async"] = body.pop("respond_async")
    try:
        return ImageCallOptions.model_validate(values)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else None
        name = "Prefer: wait" if field == "wait" else field
        raise InvalidRequest(f"{name}: {problem['msg']}", detail(field, problem["msg"], "value_error")) from None


def image_response(generation: GenerationService, job: Job) -> dict[str, Any]:
    """The seed's /image answer built from a finished job."""
    result = job.result or {}
    timings = dict(result.get("timings", {}))
    timings["queue_ms"] = round(((job.started_at or job.created_at) - job.created_at) * 1000, 3)
    timings["total_ms"] = round(((job.finished_at or time.time()) - job.created_at) * 1000, 3)
    mocked = generation.settings.use_mocks
    body = ImageResponse(
        job_id=job.id, urls=[generation.file_url(f) for f in generation.result_files(job)],
        engine="mock" if mocked else "openvino-genai", used_mocks=mocked,
        created_at=iso(job.created_at) or "", seed=result["seed"], seeds=result["seeds"],
        parameters=result["parameters"], timings=timings,
    )
    return body.model_dump()


@bp.get("/generated/<path:filename>")
def generated_file(filename: str) -> Response:
    """Serve a generated PNG; anything that is not one of our file names is a 404."""
    path = services().generation.file_path(filename, caller())
    if path is None:
        raise NotFound(f"no generated file {filename!r}")
    return send_file(path, mimetype="image/png", max_age=86400)


@bp.get("/health")
@documented(responses={200: Health, 503: Health})
def health() -> tuple[Response, int]:
    """Readiness for monitors: 200 when images can be generated, else 503 with the reason (anonymous
    callers on a server with accounts get only status and reason)."""
    svc = services()
    problem = svc.generation.database_problem()
    body = server_status.health_body(svc.settings, svc.loader, svc.images, svc.started_at, problem)
    body["node"] = {"id": svc.generation.nodes.node, "name": svc.generation.nodes.name}
    if problem is None:
        body["workers"] = svc.generation.workers(caller())  # each device's (and remote model's) worker and job
    body["models"] = svc.models.health()  # loaded models, their measured memory, downloads in progress
    if problem is None and not svc.generation.job_store.is_local:
        body["nodes"] = svc.generation.fleet(caller())  # a fleet on one database: every node's state
    return jsonify(health_view(body, caller())), 200 if body["ready"] else 503


@bp.get("/health/live")
@documented(responses={200: Alive})
def health_live() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "alive"})


@bp.get("/health/ready")
@documented(responses={200: Ready, 503: Ready})
def health_ready() -> tuple[Response, int]:
    """Readiness only, small body."""
    svc = services()
    problem = svc.generation.database_problem()
    ready = svc.loader.ready and problem is None
    reason = svc.loader.reason if not svc.loader.ready else problem
    return jsonify({"ready": ready, "reason": reason}), 200 if ready else 503


@bp.get("/samplers")
@documented(responses={200: SamplerList})
def samplers() -> Response:
    """The samplers we run, with their genai scheduler and A1111 names."""
    return jsonify(server_status.sampler_list(services().settings))


@bp.get("/modes")
@documented(responses={200: ModeList})
def list_modes() -> Response:
    """The generation modes, each with its route, image inputs and fields (limits and defaults applied)."""
    svc = services()
    return jsonify(server_status.mode_list(svc.settings, svc.loader))


class ModelQuery(BaseModel):
    """Which model a listing describes."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(None, max_length=300, description="A model id of GET /models (default: the default model).")


@bp.get("/loras")
@documented(query=ModelQuery, responses={200: LoraList})
def list_loras() -> Response:
    """The LoRA files in LORA_DIR: name, alias, layout, the family each fits and whether it fits the model
    (?model=, else the default)."""
    svc = services()
    s = svc.settings
    folder = generation_extras.listed_model(svc.loader, query_args(ModelQuery).model).folder
    return jsonify({"loras": lora_listing.lora_items(s, folder), "lora_dir": str(s.loras_dir),
                    "enabled": s.lora_enabled, "max_weight": s.lora_max_weight, "max_count": s.lora_max_count})


@bp.get("/presets")
@documented(query=ModelQuery, responses={200: PresetList})
def list_presets() -> Response:
    """fast, balanced and quality for the model's family (?model=, else the default): steps, guidance, sampler,
    decoder, LoRAs, needs."""
    svc = services()
    model = generation_extras.listed_model(svc.loader, query_args(ModelQuery).model)
    return jsonify({**lora_listing.presets_view(svc.settings, model.folder, model.family), "model": model.id})
