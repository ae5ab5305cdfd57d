"""AUTOMATIC1111-compatible API under /sdapi/v1, running on sdedge's job queue.

Requests become native jobs (text2img, img2img, inpaint) and block until the job ends, as A1111 clients
expect. Fields we do not support are accepted and ignored; a sampler we lack falls back to the closest
one we run, and `info` names the one that ran.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Literal

from flask import Blueprint, Response, jsonify, request
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, RootModel

from sdedge import __version__
from sdedge.auth import caller
from sdedge.errors import InvalidRequest
from sdedge.infotext import parse_infotext
from sdedge.job_store import Job, JobStatus
from sdedge.openapi_spec import documented
from sdedge.routes.http_input import json_body
from sdedge.samplers import a1111_name, from_a1111
from sdedge.services import Services, services
from sdedge.uploads import decode_mask, image_metadata, png_bytes

bp = Blueprint("a1111", __name__, url_prefix="/sdapi/v1")

RESIZE_MODES = {0: "stretch", 1: "crop", 2: "fit", 3: "stretch"}  # A1111: just resize, crop, fill, latent
# A1111's own txt2img/img2img fields: the ones its `parameters` echo carries. Anything else a client sends
# (SillyTavern puts `url` and `auth: "user:password"` in the body) is never echoed back.
A1111_FIELDS = frozenset("""
    prompt negative_prompt styles seed subseed subseed_strength seed_resize_from_h seed_resize_from_w sampler_name
    sampler_index scheduler batch_size n_iter steps cfg_scale distilled_cfg_scale width height restore_faces tiling
    do_not_save_samples do_not_save_grid eta denoising_strength s_min_uncond s_churn s_tmax s_tmin s_noise
    override_settings override_settings_restore_afterwards refiner_checkpoint refiner_switch_at
    disable_extra_networks firstpass_image comments enable_hr firstphase_width firstphase_height hr_scale
    hr_upscaler hr_second_pass_steps hr_resize_x hr_resize_y hr_checkpoint_name hr_sampler_name hr_scheduler
    hr_prompt hr_negative_prompt hr_cfg hr_distilled_cfg force_task_id script_name script_args send_images
    save_images alwayson_scripts infotext init_images resize_mode image_cfg_scale mask mask_blur_x mask_blur_y
    mask_blur mask_round inpainting_fill inpaint_full_res inpaint_full_res_padding inpainting_mask_invert
    initial_noise_multiplier latent_mask include_init_images
""".split())


class Txt2ImgRequest(BaseModel):
    """A1111's txt2img body; other A1111 fields (styles, hires fix, scripts...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    prompt: str = ""
    negative_prompt: str | None = Field("", description="null: none.")
    seed: int | None = Field(-1, description="-1 or null: random. Image i of the request uses seed+i.")
    sampler_name: str | None = Field(None, description="A1111 name (Euler a, Euler, DDIM, PLMS, LMS, LCM); "
                                                       "others fall back to the closest, named in info.")
    sampler_index: str | None = Field(None, description="Deprecated A1111 alias of sampler_name.")
    batch_size: int | None = Field(1, ge=1, description="null: 1.")
    n_iter: int | None = Field(1, ge=1, description="batch_size * n_iter images, at most MAX_IMAGES; null: 1.")
    steps: int | None = Field(None, ge=1, description="Default: the server's DEFAULT_STEPS.")
    cfg_scale: float | None = Field(None, ge=0, le=30, description="Default: the server's DEFAULT_GUIDANCE_SCALE.")
    width: int | None = Field(None, description="Default: the server's DEFAULT_SIZE.")
    height: int | None = Field(None, description="Default: the server's DEFAULT_SIZE.")
    send_images: bool = Field(True, description="False: answer without the images (they stay on the server).")
    save_images: bool = Field(False, description="Ignored: every image is kept in GENERATED_IMAGES_DIR.")
    override_settings: dict[str, Any] | None = Field(
        None, description="sd_model_checkpoint picks this request's model (id or title); other keys are ignored.")
    # sdedge's extra fields (A1111 has none for these; LoRAs also go in the prompt as <lora:name:weight>)
    preset: Literal["fast", "balanced", "quality"] | None = Field(
        None, description="sdedge extra: the model family's speed preset (GET /presets); explicit steps, cfg_scale "
                          "and sampler_name win.")
    decoder: Literal["full", "tiny"] | None = Field(None, description="sdedge extra: full VAE or tiny autoencoder.")
    loras: list[dict[str, Any]] | None = Field(
        None, description='sdedge extra: [{"name", "weight"}], added to the prompt\'s <lora:name:weight> tags.')


class Img2ImgRequest(Txt2ImgRequest):
    """A1111's img2img body: with `mask` it inpaints, without it redraws the init image."""

    init_images: list[str] = Field(..., min_length=1, description="Base64 PNG/JPEG/WebP or data URLs; the first is used.")
    denoising_strength: float = Field(0.75, ge=0, le=1)
    resize_mode: int = Field(0, description="0 stretch, 1 crop, 2 fit (fill), 3 stretch.")
    mask: str | None = Field(None, description="Base64 or data URL; white areas are repainted.")
    mask_blur: int = Field(4, ge=0, description="Mask feathering in pixels.")
    inpainting_mask_invert: int = Field(0, ge=0, le=1, description="1: repaint the black areas instead.")
    include_init_images: bool = Field(False, description="Echo init_images and mask in parameters.")


class GenerationResponse(BaseModel):
    """What txt2img and img2img answer."""

    images: list[str] = Field(description="Base64 PNGs (no data: prefix), each with its infotext chunk.")
    parameters: dict[str, Any] = Field(description="The request, with defaults filled.")
    info: str = Field(description="JSON string: seed, all_seeds, sampler_name that ran, infotexts, job_id...")


class ProgressQuery(BaseModel):
    """Query parameters of GET /progress."""

    skip_current_image: bool = False


class ProgressState(BaseModel):
    """A1111's shared.state, as far as we have it."""

    skipped: bool = False
    interrupted: bool = False
    stopping_generation: bool = False
    job: str = ""
    job_count: int = 0
    job_timestamp: str = "0"
    job_no: int = 0
    sampling_step: int = 0
    sampling_steps: int = 0


class ProgressResponse(BaseModel):
    """GET /progress: the running job's progress and latest preview."""

    progress: float
    eta_relative: float
    state: ProgressState
    current_image: str | None = Field(default=None, description="Base64 PNG of the latest step preview.")
    textinfo: str | None = None
    current_task: str | None = None


class PngInfoRequest(BaseModel):
    """POST /png-info: one image."""

    image: str = Field(..., description="Base64 PNG/JPEG/WebP or a data URL.")


class PngInfoResponse(BaseModel):
    """What A1111 reads from an image: its infotext, the other metadata, and the infotext parsed."""

    info: str = Field(description="The `parameters` text chunk (A1111 infotext); empty when there is none.")
    items: dict[str, Any] = Field(description="The image's other metadata, as text.")
    parameters: dict[str, Any] = Field(description="The infotext parsed as A1111 does (values are strings).")


Empty = RootModel[dict[str, Any]]



# -- generation ---------------------------------------------------------------------------------
@bp.post("/txt2img")
@documented(request=Txt2ImgRequest, responses={200: GenerationResponse})
def txt2img() -> Response:
    """Text to image; blocks until the images are ready."""
    req = Txt2ImgRequest.model_validate(json_body())
    return _generate("text2img", req, _native_body(req))


@bp.post("/img2img")
@documented(request=Img2ImgRequest, responses={200: GenerationResponse})
def img2img() -> Response:
    """Image to image, or inpainting when a mask is given; blocks until the images are ready."""
    req = Img2ImgRequest.model_validate(json_body())
    body = _native_body(req)
    body.update(strength=req.denoising_strength, resize_mode=RESIZE_MODES.get(req.resize_mode, "stretch"))
    if req.mask is None:
        return _generate("img2img", req, {**body, "init_image": req.init_images[0]})
    inpaint = {"image": req.init_images[0], "mask_blur": req.mask_blur, "invert_mask": bool(req.inpainting_mask_invert)}
    # A1111 reads a mask by its alpha when it has transparency (the opaque part repaints), else by its grey.
    mask = png_bytes(decode_mask("mask", req.mask, services().settings, "opaque"))
    return _generate("inpaint", req, {**body, **inpaint}, {"mask": mask})


def _native_body(req: Txt2ImgRequest) -> dict[str, Any]:
    """Our native request for an A1111 one (sampler already resolved)."""
    settings = services().settings
    count = (req.batch_size or 1) * (req.n_iter or 1)
    if count > settings.max_images:
        raise InvalidRequest(
            f"batch_size x n_iter = {count} images; this server makes at most MAX_IMAGES={settings.max_images}",
            [{"field": "batch_size", "message": f"batch_size * n_iter must be at most {settings.max_images}",
              "type": "limit"}])
    requested = req.sampler_name or req.sampler_index
    sampler, _ = from_a1111(requested, settings.default_sampler)
    body: dict[str, Any] = {"prompt": req.prompt, "negative_prompt": req.negative_prompt or "", "num_images": count}
    if requested:  # without one the preset's (or the server's default) runs
        body["sampler"] = sampler
    checkpoint = (req.override_settings or {}).get("sd_model_checkpoint")
    if checkpoint:
        body["model"] = str(checkpoint)
    seed = req.seed if req.seed is not None and req.seed >= 0 else None
    optional = {"seed": seed, "num_inference_steps": req.steps, "guidance_scale": req.cfg_scale, "width": req.width,
                "height": req.height, "preset": req.preset, "decoder": req.decoder, "loras": req.loras}
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def _generate(job_type: str, req: Txt2ImgRequest, body: dict[str, Any], files: dict[str, bytes] | None = None,
              ) -> Response:
    """Queue the job, wait for it (A1111 clients block), answer with its images."""
    svc = services()
    job = svc.generation.run(job_type, body, files, caller=caller())
    if job.status is not JobStatus.CANCELED:
        svc.generation.raise_if_failed(job)
    # interrupted: A1111 answers 200 with what it has (the partial image, when one was kept) and says so
    paths = [path for name in svc.generation.result_files(job) if (path := svc.generation.file_path(name, caller()))]
    images = [base64.b64encode(path.read_bytes()).decode() for path in paths] if req.send_images else []
    info = _info(svc, job, req, paths)
    if job.status is JobStatus.CANCELED:
        info.update(interrupted=True, error=job.error)
    return jsonify(GenerationResponse(images=images, parameters=_echo(req), info=json.dumps(info)).model_dump())


def _echo(req: Txt2ImgRequest) -> dict[str, Any]:
    """The request as A1111 echoes it: the fields it knows (never unknown ones: clients put credentials there),
    init images and mask only when asked for."""
    echoed = req.model_dump(exclude={key for key in req.model_extra or {} if key not in A1111_FIELDS})
    if isinstance(req, Img2ImgRequest) and not req.include_init_images:
        echoed.update(init_images=None, mask=None)
    return echoed


def _info(svc: Services, job: Job, req: Txt2ImgRequest, paths: list[Any]) -> dict[str, Any]:
    """A1111's info object for a finished job, plus job_id and timings."""
    result = job.result or {}
    params, seeds = result.get("parameters", {}), result.get("seeds", [])
    requested = req.sampler_name or req.sampler_index
    sampler, exact = from_a1111(requested, svc.settings.default_sampler)
    ran = a1111_name(params.get("sampler", sampler))
    count = len(seeds)
    return {
        "prompt": params.get("prompt", req.prompt), "all_prompts": [params.get("prompt", req.prompt)] * count,
        "negative_prompt": params.get("negative_prompt", ""),
        "all_negative_prompts": [params.get("negative_prompt", "")] * count,
        "seed": result.get("seed"), "all_seeds": seeds, "subseed": -1, "all_subseeds": [-1] * count,
        "subseed_strength": 0, "width": params.get("width"), "height": params.get("height"),
        "sampler_name": ran, "cfg_scale": params.get("guidance_scale"), "steps": params.get("steps"),
        "batch_size": req.batch_size or 1, "restore_faces": False, "face_restoration_model": None,
        "sd_model_name": result.get("model") or svc.loader.model_name(), "sd_model_hash": result.get("model_hash"), "sd_vae_name": None, "sd_vae_hash": None,
        "seed_resize_from_w": -1, "seed_resize_from_h": -1,
        "denoising_strength": params.get("strength", getattr(req, "denoising_strength", None)),
        "extra_generation_params": _extra_params(params, None if exact else f"{requested} is not available; ran {ran}"),
        "index_of_first_image": 0, "infotexts": [_infotext(path) for path in paths], "styles": [],
        "job_timestamp": _timestamp(job.started_at or job.created_at), "clip_skip": 1,
        "is_using_inpainting_conditioning": job.type == "inpaint", "version": f"sdedge {__version__}",
        "job_id": job.id, "timings": result.get("timings", {}),
    }


def _extra_params(params: dict[str, Any], fallback: str | None) -> dict[str, Any]:
    """A1111's extra_generation_params: Lora hashes (as A1111 records them), preset, tiny decoder, sampler fallback."""
    extra: dict[str, Any] = {}
    hashes = ", ".join(f"{item['name']}: {item['hash']}" for item in params.get("loras") or () if item.get("hash"))
    if hashes:
        extra["Lora hashes"] = hashes
    if params.get("preset"):
        extra["Preset"] = params["preset"]
    if params.get("decoder") == "tiny":
        extra["Decoder"] = "tiny"
    if fallback:
        extra["Sampler fallback"] = fallback
    return extra


def _infotext(path: Any) -> str:
    """The 'parameters' chunk the worker wrote into the PNG."""
    with Image.open(path) as image:
        return str(image.info.get("parameters", ""))


def _timestamp(epoch: float) -> str:
    return time.strftime("%Y%m%d%H%M%S", time.localtime(epoch))


# -- progress and control -----------------------------------------------------------------------
@bp.get("/progress")
@documented(query=ProgressQuery, responses={200: ProgressResponse})
def progress() -> Response:
    """Progress of the running job, with its latest preview unless skip_current_image=true."""
    generation = services().generation
    skip = ProgressQuery.model_validate(request.args.to_dict()).skip_current_image
    queue = generation.queue_status(caller())
    waiting = queue["queuedJobs"] + queue["processingJobs"]
    live = generation.live(caller=caller())  # only the caller's own running job
    if live is None:
        idle = ProgressResponse(progress=0.0, eta_relative=0.0, state=ProgressState(job_count=waiting))
        return jsonify(idle.model_dump())
    job = generation.get(live.job_id, caller())
    state = ProgressState(interrupted=job.cancel_requested, stopping_generation=job.cancel_requested, job=job.id,
                          job_count=waiting, job_timestamp=_timestamp(job.started_at or job.created_at),
                          sampling_step=live.step, sampling_steps=live.total)
    preview = None if skip or not live.preview else generation.read_file(live.preview)
    image = base64.b64encode(preview).decode() if preview else None
    body = ProgressResponse(progress=round(live.fraction, 4), eta_relative=live.eta_seconds() or 0.0, state=state,
                            current_image=image, textinfo=f"Step {live.step}/{live.total}", current_task=job.id)
    return jsonify(body.model_dump())


@bp.post("/interrupt")
@bp.post("/skip")
@documented(responses={200: Empty})
def interrupt() -> Response:
    """Stop the caller's running job at its next step; its request gets 200 with the partial image and
    `"interrupted": true` in info (skip does the same)."""
    services().generation.interrupt(caller())
    return jsonify({})


@bp.post("/png-info")
@documented(request=PngInfoRequest, responses={200: PngInfoResponse})
def png_info() -> Response:
    """Read an image's infotext (sdedge's and A1111's PNGs carry one) and parse it."""
    req = PngInfoRequest.model_validate(json_body())
    items = image_metadata("image", req.image, services().settings)
    info = str(items.pop("parameters", "") or "")
    shown = {key: value if isinstance(value, str) else str(value) for key, value in items.items()
             if key not in ("exif", "icc_profile")}  # binary blobs, as A1111 leaves them out
    body = PngInfoResponse(info=info, items=shown, parameters=parse_infotext(info) if info else {})
    return jsonify(body.model_dump())
