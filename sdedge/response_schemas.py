"""Response schemas of the native job, health and listing routes, for the OpenAPI document.

The routes build these bodies from the service's views; the models say what a client gets, and
the fuzz test (tests/test_fuzz.py) checks every answer against them. Extra keys are allowed, so
adding a field never breaks an older client's generated code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


JobStatusName = Literal["queued", "processing", "completed", "failed", "canceled"]


class JobProgress(_Open):
    """Steps done of the whole request (every image of it)."""

    step: int
    total: int
    percent: float


class JobResult(_Open):
    """A completed job's images and how they were made."""

    images: list[str] = Field(description="The PNGs as data URLs (data:image/png;base64,...); with "
                                          "?images=urls their file URLs, as in `urls`.")
    urls: list[str] = Field(description="URLs of the PNGs under /generated/.")
    seed: int
    seeds: list[int]
    parameters: dict[str, Any] = Field(description="The parameters that ran, with the seed's `guidanceScale` "
                                                   "and `model` beside sdedge's names.")
    timings: dict[str, float]
    timeTaken: int = Field(description="Milliseconds from startedAt to completedAt.")
    step_images: list[str] | None = Field(None, description="URLs of the kept step images (`step_images` asked).")
    interrupted: bool | None = Field(None, description="True: A1111's interrupt stopped it; images holds the partial one.")


class JobError(_Open):
    """Why a job failed or was canceled."""

    code: str
    message: str


class JobPhase(_Open):
    """What a running job does now; progress (0-1) is the model load's, null while generating."""

    name: str
    progress: float | None


class JobView(_Open):
    """One job as clients see it: seed 002's fields (camelCase, status names, progress 0..100, error as a
    string), sdedge's beside them."""

    id: str
    type: str
    status: JobStatusName
    priority: int
    progress: int = Field(ge=0, le=100, description="Percent done; 100 once completed.")
    progressDetail: JobProgress
    position: int | None = Field(description="Queued jobs ahead of this one (0: next); null once it left the queue.")
    eta_seconds: float | None
    model: str | None = Field(None, description="The model the job runs on (GET /models id).")
    phase: JobPhase | None = Field(None, description="While running: loading model, downloading model or generating.")
    adjusted: list[dict[str, Any]] = Field(default_factory=list,
                                           description="Parameters the model's family ignores, dropped (field, message).")
    preview_url: str | None
    result: JobResult | None
    error: str | None = Field(description="Why it failed or was canceled (errorDetail.message).")
    errorDetail: JobError | None
    request: dict[str, Any]
    attempts: int
    createdAt: str
    startedAt: str | None
    completedAt: str | None = Field(description="When it completed, failed or was canceled.")
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class CanceledJob(JobView):
    """POST /jobs/<id>/cancel: the job after the cancel."""

    success: bool


class JobList(_Open):
    """GET /jobs: newest first, and where the next page starts."""

    jobs: list[JobView]
    next_before: str | None


class DeletedJob(_Open):
    """DELETE /jobs/<id>."""

    deleted: str


class CurrentJob(_Open):
    """The job this server's device is running."""

    id: str | None = Field(description="Null when it is another user's job.")
    step: int
    total: int
    percent: float
    eta_seconds: float | None


class QueueStatus(_Open):
    """GET /queue/status, in the seed's field names."""

    queuedJobs: int
    processingJobs: int
    completedJobs: int
    failedJobs: int
    canceledJobs: int
    averageProcessingTime: int = Field(description="Milliseconds, over the last completed jobs (0 before the first).")
    maxQueueSize: int
    currentJob: CurrentJob | None


class Health(_Open):
    """GET /health: 200 when images can be generated, else 503 with the reason."""

    status: str
    ready: bool = Field(False, description="Left out, with everything but status and reason, for anonymous "
                                           "callers of a server with accounts.")
    reason: str | None


class Ready(_Open):
    """GET /health/ready."""

    ready: bool
    reason: str | None


class Alive(_Open):
    """GET /health/live."""

    status: str


class ModeList(_Open):
    """GET /modes: each mode's route, image inputs and fields with this server's limits and defaults."""

    modes: list[dict[str, Any]]
    default: str


class SamplerList(_Open):
    """GET /samplers."""

    samplers: list[dict[str, Any]]
    aliases: dict[str, str]
    default: str


class ModelView(_Open):
    """One model of the library (seed 002's fields first)."""

    id: str
    name: str
    description: str
    type: str
    loaded: bool
    devices: list[dict[str, Any]] = Field(description="Where it is loaded: each worker's device and the one its "
                                                      "engine runs on (several with OPENVINO_DEVICE=GPU,CPU).")
    version: str | None
    family: str | None
    source: str
    installed: bool
    size_bytes: int
    modes: list[str]
    negative_prompt: bool
    defaults: dict[str, Any]
    download: dict[str, Any] | None


class ModelList(_Open):
    """GET /models."""

    models: list[ModelView]
    default: str


class ImageAccepted(JobView):
    """POST /image answered before the image was ready (asked for, or the server stopped waiting): the job,
    its id under the seed's name, and where to poll (also the Location header)."""

    job_id: str
    status_url: str = Field(description="GET it until the job is finished; the images are in result.images.")
    events_url: str = Field(description="Server-Sent Events of the same job.")


class LoraItem(_Open):
    """One LoRA file in LORA_DIR."""

    name: str = Field(description="What requests name it by: its path below LORA_DIR without .safetensors.")
    alias: str = Field(description="kohya's ss_output_name, else the name; requests may use it too.")
    path: str
    size: int
    hash: str = Field(description="A1111's short hash (the infotext's `Lora hashes`).")
    layout: str = Field(description="kohya (A1111), peft (diffusers), diffusers-attn-procs, lycoris or unknown.")
    family: str = Field(description="The family and architecture it was made for.")
    fits_model: bool | None = Field(description="Whether it fits the model (null: the model is not located yet).")
    problem: str | None = Field(description="Why it cannot be used with this model, naming it.")
    metadata: dict[str, str]


class LoraList(_Open):
    """GET /loras."""

    loras: list[LoraItem]
    lora_dir: str
    enabled: bool = Field(description="LORA_ENABLED: false refuses LoRA requests.")
    max_weight: float
    max_count: int


class PresetItem(_Open):
    """One speed preset, resolved for the model."""

    name: str
    steps: int
    guidance_scale: float
    sampler: str
    decoder: str
    loras: list[dict[str, Any]]
    needs: list[str] = Field(description="What it needs beyond the model (a LoRA file, the tiny decoder).")
    available: bool
    reason: str | None
    notes: list[str]


class PresetList(_Open):
    """GET /presets."""

    family: str | None
    family_name: str | None
    model: str | None = Field(None, description="The model they are for (?model=, else the default model).")
    presets: list[PresetItem]
    note: str
