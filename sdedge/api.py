"""The core HTTP API: POST /image, health, samplers, models and the generated files."""

from __future__ import annotations

import platform
import time
from typing import Any

from flask import Blueprint, Response, jsonify, send_file

from sdedge import __version__, models
from sdedge.app import Services, services
from sdedge.engine import SAMPLERS
from sdedge.errors import InvalidRequest, NotFound, error_for
from sdedge.jobs import Job, JobStatus
from sdedge.jobs_api import file_url, iso, job_view, request_body, submit
from sdedge.schemas import REQUEST_MODELS, ImageResponse
from sdedge.storage import A1111_SAMPLER_NAMES

bp = Blueprint("api", __name__)

SAMPLER_NOTES = {"lms": "runs as DDIM: openvino-genai deprecated LMS_DISCRETE", "auto": "the model's own scheduler"}


@bp.post("/image")
def generate_image() -> tuple[Response, int]:
    """Queue a job (text2img, or `mode`: img2img, inpaint, style-transfer) and wait up to REQUEST_TIMEOUT; else 202."""
    svc = services()
    svc.loader.engine()  # 503 with the reason now, rather than a job that waits for a model
    body, files = request_body()
    mode = str(body.pop("mode", "text2img"))
    if mode not in REQUEST_MODELS:
        raise InvalidRequest(f"unknown mode {mode!r}", {"field": "mode", "valid": list(REQUEST_MODELS)})
    job, _ = submit(svc, mode, body, files)
    job = wait_for_job(svc, job.id, svc.settings.request_timeout)
    if job.status is JobStatus.SUCCEEDED:
        return jsonify(image_response(svc, job)), 200
    if job.status.finished:
        raise error_for(job.error or {})
    return jsonify(job_view(svc, job)), 202


def wait_for_job(svc: Services, job_id: str, timeout: float) -> Job:
    """The job once finished, or as it is when timeout runs out."""
    deadline = time.monotonic() + timeout
    seen = svc.notifier.version()
    job = svc.jobs.get(job_id)
    while not job.status.finished and (left := deadline - time.monotonic()) > 0:
        seen = svc.notifier.wait(seen, min(left, svc.settings.worker_poll_seconds))
        job = svc.jobs.get(job_id)
    return job


def image_response(svc: Services, job: Job) -> dict[str, Any]:
    """The seed's /image answer built from a finished job."""
    result = job.result or {}
    timings = dict(result.get("timings", {}))
    timings["queue_ms"] = round(((job.started_at or job.created_at) - job.created_at) * 1000, 3)
    timings["total_ms"] = round(((job.finished_at or time.time()) - job.created_at) * 1000, 3)
    body = ImageResponse(
        job_id=job.id, urls=[file_url(svc, f) for f in result.get("files", [])],
        engine="mock" if svc.settings.use_mocks else "openvino-genai", used_mocks=svc.settings.use_mocks,
        created_at=iso(job.created_at) or "", seed=result["seed"], seeds=result["seeds"],
        parameters=result["parameters"], timings=timings,
    )
    return body.model_dump()


@bp.get("/generated/<path:filename>")
def generated_file(filename: str) -> Response:
    """Serve a generated PNG; anything that is not one of our file names is a 404."""
    path = services().store.path(filename)
    if path is None:
        raise NotFound(f"no generated file {filename!r}")
    return send_file(path, mimetype="image/png", max_age=86400)


@bp.get("/health")
def health() -> tuple[Response, int]:
    """Readiness for monitors: 200 when images can be generated, else 503 with the reason."""
    body = health_body(services())
    return jsonify(body), 200 if body["ready"] else 503


@bp.get("/health/live")
def health_live() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "alive"})


@bp.get("/health/ready")
def health_ready() -> tuple[Response, int]:
    """Readiness only, small body."""
    loader = services().loader
    return jsonify({"ready": loader.ready, "reason": loader.reason}), 200 if loader.ready else 503


def health_body(svc: Services) -> dict[str, Any]:
    """Everything a monitor or the page's status badge wants to know."""
    status = svc.loader.status()
    return {
        "status": "ok" if svc.loader.ready else status["state"],
        "ready": svc.loader.ready,
        "reason": status.pop("reason"),
        "used_mocks": svc.settings.use_mocks,
        "model": {"id": svc.settings.stable_diffusion_repo_id, "path": status.pop("model_path")},
        "device": {"requested": svc.settings.openvino_device, "actual": status.pop("actual_device")},
        "loader": status,
        "limits": limits(svc),
        "versions": versions(),
        "uptime_seconds": round(time.time() - svc.started_at, 3),
        "disk": {"generated_dir": str(svc.store.root), "free_bytes": svc.store.free_bytes()},
        "paths": {"generated_images_dir": str(svc.settings.generated_images_dir),
                  "models_cache_dir": str(svc.settings.models_cache_dir), "data_dir": str(svc.settings.data_dir)},
    }


def limits(svc: Services) -> dict[str, Any]:
    """Request limits and defaults, so clients can shape their forms to this server."""
    s = svc.settings
    return {
        "min_size": s.min_size, "max_width": s.max_width, "max_height": s.max_height, "max_steps": s.max_steps,
        "max_images": s.max_images, "max_prompt_length": s.max_prompt_length, "max_image_bytes": s.max_image_bytes,
        "defaults": {"steps": s.default_steps, "guidance_scale": s.default_guidance_scale, "size": s.default_size,
                     "sampler": s.default_sampler},
    }


def versions() -> dict[str, str]:
    """Versions of sdedge and the runtime it depends on."""
    found = {"sdedge": __version__, "python": platform.python_version()}
    for module in ("openvino", "openvino_genai"):
        try:
            found[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - a missing runtime is reported, not fatal, in /health
            found[module] = "unavailable"
    return found


@bp.get("/samplers")
def samplers() -> Response:
    """The samplers we run, with their genai scheduler and A1111 names."""
    items = [
        {"name": name, "scheduler": kind, "a1111_name": A1111_SAMPLER_NAMES[name], "note": SAMPLER_NOTES.get(name)}
        for name, kind in SAMPLERS.items()
    ]
    return jsonify({"samplers": items, "aliases": {"plms": "pndm"}, "default": services().settings.default_sampler})


@bp.get("/models")
def list_models() -> Response:
    """The configured model: where it is and whether it is present and loaded."""
    svc = services()
    described = models.describe_model(svc.settings)
    described["loaded"] = svc.loader.ready and not svc.settings.use_mocks
    return jsonify({"models": [described]})


MODE_LABELS = {"text2img": "Text to image", "img2img": "Image to image", "inpaint": "Inpainting",
               "style-transfer": "Style transfer"}
_SKIPPED_FIELDS = {"transaction_key", "model", "priority"}


@bp.get("/modes")
def list_modes() -> Response:
    """The generation modes, each with its route, image inputs and fields (limits and defaults applied)."""
    svc = services()
    image_ok = not svc.loader.ready or svc.loader.supports_image_inputs()
    modes = [mode_description(svc, name, model, image_ok) for name, model in REQUEST_MODELS.items()]
    return jsonify({"modes": modes, "default": "text2img"})


def mode_description(svc: Services, name: str, model: type[Any], image_ok: bool) -> dict[str, Any]:
    """One mode as the page builds its form from it."""
    schema = model.model_json_schema()
    properties = {k: v for k, v in schema.get("properties", {}).items() if k not in _SKIPPED_FIELDS}
    images = list(model.IMAGE_FIELDS)
    fields = {key: _field_description(svc, key, spec) for key, spec in properties.items() if key not in images}
    available = image_ok or not images
    return {"id": name, "label": MODE_LABELS.get(name, name), "path": f"/generate/{name}", "inputs": images,
            "fields": fields, "required": [f for f in schema.get("required", []) if f not in images],
            "available": available,
            "reason": None if available else "this model has no VAE encoder: image inputs are unavailable"}


def _field_description(svc: Services, key: str, spec: dict[str, Any]) -> dict[str, Any]:
    s = svc.settings
    kinds = [item.get("type") for item in spec.get("anyOf", [spec]) if item.get("type") not in (None, "null")]
    out: dict[str, Any] = {"type": kinds[0] if kinds else "string", "description": spec.get("description")}
    for name in ("default", "minimum", "maximum", "enum", "maxLength"):
        if name in spec and spec[name] is not None:
            out[name] = spec[name]
    limits: dict[str, dict[str, Any]] = {
        "prompt": {"maxLength": s.max_prompt_length}, "negative_prompt": {"maxLength": s.max_prompt_length},
        "width": {"minimum": s.min_size, "maximum": s.max_width, "multipleOf": 8, "default": s.default_size},
        "height": {"minimum": s.min_size, "maximum": s.max_height, "multipleOf": 8, "default": s.default_size},
        "num_inference_steps": {"minimum": 1, "maximum": s.max_steps, "default": s.default_steps},
        "guidance_scale": {"default": s.default_guidance_scale},
        "num_images": {"maximum": s.max_images},
        "sampler": {"enum": list(SAMPLERS), "default": s.default_sampler},
    }
    out.update(limits.get(key, {}))
    return out
