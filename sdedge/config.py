"""Settings, read from the environment and `.env` (names kept from the seed service)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_REPO_ID = "OpenVINO/stable-diffusion-v1-5-int8-ov"
DEVICES = ("GPU", "CPU", "NPU", "AUTO")
DEVICE_CLASSES = ("CPU", "GPU", "NPU")  # what a job may ask for (`device`)
REMOTE_KINDS = ("a1111", "stability")


class RemoteEngine(BaseModel):
    """One entry of REMOTE_ENGINES: a model served by another server instead of this machine's device."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$",
                    description="The model id clients ask for (`model`).")
    kind: Literal["a1111", "stability"] = Field(..., description="a1111: an AUTOMATIC1111-compatible server (another "
                                                "sdedge, A1111, Forge); stability: the Stability AI REST API.")
    url: str = Field("", description="Base URL (stability: https://api.stability.ai when empty).")
    name: str | None = Field(None, description="Shown in listings (default: the id).")
    key: str | None = Field(None, description="The credential itself (prefer key_env).")
    key_env: str | None = Field(None, description="Name of the environment variable holding the credential.")
    model: str | None = Field(None, description="a1111: the checkpoint to run (sd_model_checkpoint); stability: the "
                                                "service (core, ultra, sd3) or an sd3 model (sd3.5-large, ...).")
    timeout: float = Field(600.0, gt=0, le=86400, description="Seconds one remote call may take.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {value!r}")
        return value


class Settings(BaseSettings):
    """Every knob of the server; each field maps to one upper-case environment variable."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    # Serving
    host: str = Field("0.0.0.0", description="Address to listen on (0.0.0.0 serves the local network).")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    threads: int = Field(
        16, ge=2, le=128, description="Waitress threads for HTTP requests; each open event stream and each call "
                                      "waiting for its image (POST /image, A1111, OpenAI) holds one."
    )
    base_url: str | None = Field(None, description="Public base URL used to build absolute image links.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["text", "json"] = Field(
        "text", description="Log lines as text, or json: one JSON object per line (job events with id, node, model, "
                            "durations) for a log shipper.")

    # Model and device
    use_mocks: bool = Field(False, description="Return placeholder images instead of running the model.")
    auto_download_models: bool = Field(True, description="Download the model at start-up if missing.")
    models_cache_dir: Path = Field(Path("data/models"), description="Folder for downloaded models and the compile cache.")
    stable_diffusion_repo_id: str = Field(
        DEFAULT_REPO_ID, description="Hugging Face repo id of the OpenVINO model, or a local model folder."
    )
    huggingface_token: str | None = Field(
        None,
        validation_alias=AliasChoices("HUGGINGFACE_TOKEN", "HF_TOKEN"),
        description="Token for gated or private repositories (HF_TOKEN also accepted).",
    )
    openvino_device: str = Field(
        "GPU", description="Inference device: GPU, CPU, NPU or AUTO (falls back to CPU); a list such as GPU,CPU or "
                           "GPU.0,GPU.1 runs one worker per device on the same queue.")
    compile_cache: bool = Field(True, description="Keep OpenVINO's compiled-model cache under MODELS_CACHE_DIR.")
    compile_cache_dir: Path | None = Field(
        None, description="Folder of OpenVINO's compiled-model cache (default MODELS_CACHE_DIR/ov-cache), e.g. on a "
                          "faster disk.")
    fast_decoder: bool = Field(
        False, description="Default decoder: the tiny autoencoder in vae_*_tiny/ beside the model (TAESD), much faster, a "
                      "little softer; a request's `decoder` (full or tiny) chooses per job."
    )
    lora_enabled: bool = Field(
        True, description="Build the pipelines so LoRA adapters apply per request (<lora:name:weight>, `loras`) "
                          "without recompiling; false: plain pipelines, a little less memory, LoRA requests get 400."
    )
    lora_preload: bool = Field(
        False, description="Build the pipelines LoRA-ready at load. false: plain pipelines until the first request "
                           "with a LoRA, which rebuilds that model's pipelines once (LoRA-ready steps cost about 1.5x "
                           "a plain one at 512x512, docs/BENCHMARKS.md)."
    )
    lora_release_after: int = Field(
        0, ge=0, le=10_000, description="LoRA-free jobs a LoRA-ready model still runs before it is rebuilt plain "
                                        "(faster); 0: the first one is plain, so a LoRA-free image is the same bytes "
                                        "whatever ran before. Ignored with LORA_PRELOAD=true (always LoRA-ready)."
    )
    lora_dir: Path | None = Field(
        None, description="Folder of LoRA .safetensors files (A1111/kohya or diffusers/PEFT layout); default "
                          "DATA_DIR/loras."
    )
    lora_coverage: Literal["all", "attention"] = Field(
        "all", description="Layers LoRA can reach: all (every linear and 1x1 convolution, as LCM-LoRA and LoCon need) "
                           "or attention (text encoders and transformer blocks, as kohya trains by default; cheaper "
                           "per step)."
    )
    lora_max_weight: float = Field(4.0, gt=0, le=100, description="Largest absolute LoRA weight a request may give.")
    lora_max_count: int = Field(8, ge=1, le=32, description="Most LoRAs one request may blend.")
    lora_cache_size: int = Field(
        8, ge=1, le=256, description="LoRA files kept prepared in memory (least recently used dropped)."
    )
    warmup: bool = Field(False, description="Run one step at DEFAULT_SIZE after loading, so the first image is not slower.")
    ov_num_threads: int = Field(0, ge=0, description="OpenVINO CPU inference threads (0: all cores).")
    ov_performance_hint: Literal["LATENCY", "THROUGHPUT"] = Field(
        "LATENCY", description="OpenVINO performance hint: LATENCY suits one job at a time."
    )
    ov_enable_mmap: bool = Field(True, description="Map model weights from disk instead of copying them into memory.")
    static_pipeline_cache_size: int = Field(
        4, ge=1, le=32, description="GPU/NPU: how many compiled static-shape pipelines to keep (per loaded model)."
    )
    cpu_static_shapes: Literal["auto", "true", "false"] = Field(
        "auto", description="CPU: compile the pipelines for the request's size (one size at a time, recompiled when "
                            "it changes) instead of for any size. auto: for hybrid int8 models (`sdedge convert "
                            "--hybrid-int8`), whose int8 convolutions need ~2.5x less memory and run faster so.")
    models_dir: Path = Field(
        Path("models"), description="Folder of more OpenVINO model folders (one per model, each with its "
                                    "model_index.json); each is offered in GET /models.")
    max_loaded_models: int = Field(
        1, ge=1, le=16, description="Most models kept loaded at once; loading another unloads the least recently "
                                    "used.")
    model_memory_budget_mb: int = Field(
        0, ge=0, description="Memory (MB) the loaded models may use together, as measured (RSS growth per load); "
                             "past it the least recently used are unloaded (0: no budget, only MAX_LOADED_MODELS).")
    model_affinity_max_skips: int = Field(
        4, ge=0, description="Among queued jobs of one priority, jobs for the loaded model run first, but a job is "
                             "passed by at most this many later jobs (0: strict FIFO).")
    model_affinity_max_wait: float = Field(
        60.0, ge=0, description="...and for at most this many seconds after it was queued; then it runs next, "
                                "switching models if need be.")

    remote_engines: list[RemoteEngine] = Field(
        [], description='Models served by remote engines, a JSON list: [{"id": "big-box", "kind": '
        '"a1111", "url": "http://192.168.1.30:7860"}, {"id": "sd3", "kind": "stability", "model": "sd3.5-large"}]; '
        'each runs on its own worker, beside the local devices.')
    stability_api_key: str | None = Field(
        None, description="Stability AI API key for stability entries of REMOTE_ENGINES without key or key_env."
    )

    # Output and jobs
    data_dir: Path = Field(Path("data"), description="Folder for the job database (when DATABASE_URL is unset).")
    generated_images_dir: Path = Field(Path("data/generated"), description="Folder for generated PNG files.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the job database; default sqlite:///DATA_DIR/jobs.db."
    )
    max_queue_size: int = Field(100, ge=1, description="Most queued jobs; more get HTTP 429 with Retry-After.")
    job_timeout: float = Field(900.0, gt=0, description="Seconds a job may run before it fails with a timeout.")
    preview_every_steps: int = Field(1, ge=0, description="Write a step preview every N steps (0: no previews).")
    preview_min_interval_ms: int = Field(250, ge=0, description="At most one preview per this many milliseconds.")
    preview_decoder: Literal["approx", "tiny"] = Field(
        "approx", description="Step previews: tiny draws them at the image's full size through the model's tiny "
                            "autoencoder (vae_decoder_tiny/, compiled once per model, decoded beside the UNet, "
                            "within PREVIEW_BUDGET); approx is the cheap 1/8-size latent colour map (always used "
                            "for models without vae_decoder_tiny and for 16-channel latents).")
    preview_budget: float = Field(
        0.1, gt=0, le=1, description="With PREVIEW_DECODER=tiny, a job's preview decoding may take at most this "
                                     "fraction of its elapsed time; previews that would exceed it are skipped.")
    job_retention_hours: float = Field(168.0, gt=0, description="Finished jobs and their images are pruned after this age.")
    max_output_mb: int = Field(2048, ge=1, description="Prune the oldest finished jobs when their images exceed this size.")
    min_free_disk_mb: int = Field(200, ge=0, description="/health warns when the image folder's disk has less free space.")
    worker_poll_seconds: float = Field(1.0, gt=0, description="How often the worker checks a shared database for new jobs.")
    lease_seconds: float = Field(
        30.0, ge=2, description="A running job's claim lapses this long after its worker last renewed it (every third "
                                "of it); then any node re-queues the job.")
    node_name: str | None = Field(None, description="This node's name in /health, /queue/status and the page "
                                                    "(default: the host name).")

    # Request limits
    request_timeout: float = Field(
        45.0, gt=0, description="HTTP timeout in seconds of the requests sdedge itself sends (the model hub's API, "
                                "remote engines), as the seed's client timeout. It does not cut POST /image's wait: "
                                "QUEUE_WAIT_TIMEOUT and JOB_TIMEOUT bound that.")
    queue_wait_timeout: float = Field(
        3600.0, gt=0, description="Seconds a blocking call (POST /image, A1111, OpenAI) waits for its job to start; "
                                  "then POST /image answers 202 with the job, the others cancel it and answer 504.")
    max_request_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest accepted request body in bytes.")
    max_prompt_length: int = Field(2000, ge=1, description="Longest prompt or negative prompt in characters.")
    min_size: int = Field(64, ge=8, description="Smallest width or height in pixels.")
    max_width: int = Field(1024, ge=8, description="Largest image width in pixels.")
    max_height: int = Field(1024, ge=8, description="Largest image height in pixels.")
    max_steps: int = Field(100, ge=1, description="Most inference steps per image.")
    max_images: int = Field(4, ge=1, description="Most images per request.")
    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Largest uploaded image file in bytes.")
    max_input_pixels: int = Field(4096 * 4096, ge=4096, description="Most pixels (width x height) of an uploaded image.")
    default_steps: int = Field(20, ge=1, description="Steps when a request gives none.")
    default_guidance_scale: float = Field(7.5, ge=0, description="Guidance scale when a request gives none.")
    default_size: int = Field(512, ge=8, description="Width and height when a request gives none.")
    default_sampler: str = Field("euler_a", description="Sampler when a request gives none.")

    # Security (accounts exist once `sdedge users add` created one; see README "Security")
    secret_key: str | None = Field(
        None, description="Signs session cookies; default: a random key made once in DATA_DIR/secret_key (mode 0600)."
    )
    session_days: float = Field(30.0, gt=0, description="Days a browser login lasts.")
    allowed_hosts: str = Field(
        "", description="Host names the server answers, comma-separated ('*': any; '.example.org': its subdomains); "
                        "empty: this machine's names, localhost, BASE_URL's host and any IP address."
    )
    cors_origins: str = Field(
        "", description="Other web origins allowed to call the API from a browser, comma-separated (e.g. "
                        "http://192.168.1.20:3000); empty: none."
    )
    rate_limit: str = Field(
        "120/minute", description="Submissions per user (per address when there are no accounts): a flood guard, "
                                  "e.g. '30/minute; 500/hour'; empty: no limit."
    )
    login_rate_limit: str = Field("10/minute", description="Failed logins per client address before HTTP 429.")
    max_queued_per_user: int = Field(
        25, ge=0, description="Most queued jobs one user may have; more get HTTP 429 (0: only MAX_QUEUE_SIZE)."
    )
    trusted_proxy: str | None = Field(
        None, description="Address of a reverse proxy whose X-Forwarded-* headers are believed ('*': any; waitress's "
                          "trusted_proxy)."
    )
    trusted_proxy_count: int = Field(1, ge=1, description="How many proxies in front of sdedge (waitress's "
                                                           "trusted_proxy_count).")
    trusted_proxy_headers: str = Field(
        "x-forwarded-for x-forwarded-proto", description="Headers taken from the trusted proxy: x-forwarded-for, "
        "-proto, -host, -port, forwarded (waitress's trusted_proxy_headers)."
    )


    # Integrations (README "Monitoring" and "MCP")
    metrics_token: str | None = Field(
        None, description="Bearer token Prometheus sends for GET /metrics (it cannot log in); when set, /metrics needs "
                          "it or a signed-in user, even on a server without accounts.")
    mcp_enabled: bool = Field(True, description="Serve the MCP tool server (streamable HTTP) at /mcp.")

    @field_validator("openvino_device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        devices = split_list(value.upper())
        if not devices:
            raise ValueError("must name a device: GPU, CPU, NPU or AUTO")
        for device in devices:
            if device.split(".")[0] not in DEVICES:
                raise ValueError(f"must be one of {', '.join(DEVICES)} (or GPU.1 style), or a list of them, "
                                 f"got {value!r}")
        if len(devices) > 1 and "AUTO" in devices:
            raise ValueError(f"AUTO picks one device; list the devices instead, got {value!r}")
        if len(set(devices)) != len(devices):
            raise ValueError(f"lists a device twice: {value!r}")
        return ",".join(devices)

    @field_validator("remote_engines")
    @classmethod
    def _unique_remote_ids(cls, value: list[RemoteEngine]) -> list[RemoteEngine]:
        ids = [engine.id for engine in value]
        if len(set(ids)) != len(ids):
            raise ValueError(f"each entry needs its own id, got {ids}")
        return value

    @field_validator("models_cache_dir", "generated_images_dir", "data_dir", "compile_cache_dir", "lora_dir",
                     "models_dir")
    @classmethod
    def _absolute_path(cls, value: Path | None) -> Path | None:
        # Resolved once, against the folder the server was started from: a relative path handed on
        # to Flask's send_file would be read against the installed package's folder instead.
        return None if value is None else resolve_path(value)

    @field_validator("stable_diffusion_repo_id")
    @classmethod
    def _absolute_model_folder(cls, value: str) -> str:
        return str(resolve_path(Path(value))) if looks_like_local_path(value) else value

    @field_validator("rate_limit", "login_rate_limit")
    @classmethod
    def _rate_limit_syntax(cls, value: str) -> str:
        from limits import parse_many  # flask-limiter's own parser, so the server reads what is checked here

        if value.strip():
            try:
                parse_many(value)
            except ValueError:
                raise ValueError(f"must look like '30/minute' or '10/minute; 200/hour', got {value!r}") from None
        return value.strip()

    @field_validator("base_url")
    @classmethod
    def _strip_base_url(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @model_validator(mode="after")
    def _sizes_consistent(self) -> Settings:
        for name in ("min_size", "max_width", "max_height", "default_size"):
            if getattr(self, name) % 8:
                raise ValueError(f"{name.upper()} must be a multiple of 8")
        if self.min_size > min(self.max_width, self.max_height):
            raise ValueError("MIN_SIZE must not exceed MAX_WIDTH or MAX_HEIGHT")
        if self.default_steps > self.max_steps:
            raise ValueError("DEFAULT_STEPS must not exceed MAX_STEPS")
        return self

    @property
    def model_is_local(self) -> bool:
        """True when STABLE_DIFFUSION_REPO_ID names an existing folder rather than a hub repo."""
        return Path(self.stable_diffusion_repo_id).is_dir()

    @property
    def device_list(self) -> list[str]:
        """OPENVINO_DEVICE as its devices, in order (one worker each)."""
        return self.openvino_device.split(",")

    @property
    def loras_dir(self) -> Path:
        """LORA_DIR, or DATA_DIR/loras."""
        return self.lora_dir or self.data_dir / "loras"

    @property
    def job_database_url(self) -> str:
        """DATABASE_URL, or an SQLite file in DATA_DIR."""
        return self.database_url or f"sqlite:///{self.data_dir / 'jobs.db'}"

    @property
    def allowed_host_names(self) -> list[str]:
        """ALLOWED_HOSTS as lower-case names (empty: the automatic list)."""
        return split_list(self.allowed_hosts.lower())

    @property
    def cors_origin_list(self) -> list[str]:
        """CORS_ORIGINS as a list, without trailing slashes."""
        return [origin.rstrip("/") for origin in split_list(self.cors_origins)]

    def ov_properties(self, model_id: str | None = None) -> dict[str, object]:
        """OpenVINO compile properties from the settings (cache, threads, hint, mmap); the cache per model."""
        properties: dict[str, object] = {"PERFORMANCE_HINT": self.ov_performance_hint, "ENABLE_MMAP": self.ov_enable_mmap}
        if self.compile_cache:
            properties["CACHE_DIR"] = str(self.ov_cache_dir / model_id if model_id else self.ov_cache_dir)
        if self.ov_num_threads:
            properties["INFERENCE_NUM_THREADS"] = self.ov_num_threads
        return properties

    @property
    def ov_cache_dir(self) -> Path:
        """Where OpenVINO keeps compiled models so a restart does not recompile."""
        return self.compile_cache_dir or self.models_cache_dir / "ov-cache"


def resolve_path(path: Path) -> Path:
    """An absolute path: ~ expanded, relative paths taken from the current working folder."""
    return Path(path).expanduser().resolve()


def looks_like_local_path(repo_id: str) -> bool:
    """True when STABLE_DIFFUSION_REPO_ID names a folder (existing or meant), not a hub repo `owner/name`."""
    value = repo_id.strip()
    if not value:
        return False
    shaped_like_path = value.startswith(("/", ".", "~")) or value.count("/") > 1 or any(c in value for c in "\\:")
    return shaped_like_path or Path(value).expanduser().is_dir()


def split_list(value: str) -> list[str]:
    """A comma- or space-separated setting as its items."""
    return [item for item in value.replace(",", " ").split() if item]


class SettingsError(Exception):
    """Invalid settings, reduced to one line naming the variable."""


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report into one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from None


def describe_settings_error(exc: ValidationError) -> str:
    """Name each bad variable as the user spells it in the environment."""
    parts = []
    for error in exc.errors():
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        parts.append(f"{name}: {error['msg']}")
    return "invalid settings: " + "; ".join(parts)
