"""A client of an AUTOMATIC1111-compatible server (another sdedge, A1111, Forge) running one job.

The generation is A1111's blocking `POST /sdapi/v1/txt2img` (or `img2img`, with `mask` for inpainting),
sent from a helper thread; meanwhile the worker's thread polls `GET /sdapi/v1/progress` and reports each
step (with the remote's preview image) to the step callback. When the callback asks to stop (cancel,
timeout, shutdown), `POST /sdapi/v1/interrupt` stops the remote run and the generation is canceled.

Exceptions: httpx's go through `foreign_errors.remote_errors` (unreachable, timeout, broken answer); an
error answer is a RemoteEngineError carrying the remote's own message (A1111's `detail`/`error`,
sdedge's `error.message`).
"""

from __future__ import annotations

import base64
import io
import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import httpx
from PIL import Image

from sdedge.engine.params import GenerationOutput, GenerationParams, ImageInputs, StepCallback, StepEvent
from sdedge.errors import GenerationCanceled, RemoteEngineError, map_exceptions
from sdedge.foreign_errors import remote_errors
from sdedge.remote.models import RemoteModel
from sdedge.samplers import a1111_name

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5


def auth_for(key: str | None) -> httpx.Auth | None:
    """`user:password` (A1111's --api-auth, sdedge's user:token) as HTTP Basic; a bare token as Bearer."""
    if not key:
        return None
    if ":" in key:
        user, _, password = key.partition(":")
        return httpx.BasicAuth(user, password)
    return _Bearer(key)


class _Bearer(httpx.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class A1111Client:
    """Runs generations on one AUTOMATIC1111-compatible server."""

    def __init__(self, remote: RemoteModel, poll_seconds: float = POLL_SECONDS,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.remote, self.poll_seconds = remote, poll_seconds
        self._client = httpx.Client(base_url=remote.url, auth=auth_for(remote.key), transport=transport,
                                    timeout=httpx.Timeout(remote.timeout, connect=10.0))
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sdedge-a1111-{remote.id}")

    def close(self) -> None:
        """Close the connections."""
        self._sender.shutdown(wait=False)
        self._client.close()

    def generate(self, params: GenerationParams, inputs: ImageInputs, on_step: StepCallback) -> GenerationOutput:
        """One job's images from the remote, reporting its progress; GenerationCanceled when on_step says stop."""
        path, body = request_for(params, inputs, self.remote.model)
        with map_exceptions(remote_errors(self.remote.id, self.remote.url)):
            sent = self._sender.submit(self._client.post, path, json=body)
            self._follow(sent, params, on_step)
            return self._output(sent.result(), params)

    def _follow(self, sent: Future[httpx.Response], params: GenerationParams, on_step: StepCallback) -> None:
        """Poll progress until the answer is there; interrupt the remote when on_step asks to stop."""
        event = StepEvent(0, params.num_images, 0, max(1, params.steps))
        while True:
            done, _ = wait([sent], timeout=self.poll_seconds)
            if done:
                return
            event = self._progress(params, event)
            if on_step(event):
                self._interrupt()
                wait([sent], timeout=self.poll_seconds * 20)  # let the interrupted call come back
                raise GenerationCanceled("generation canceled")

    def _progress(self, params: GenerationParams, last: StepEvent) -> StepEvent:
        """The remote's progress as a step event (the last one when the remote cannot say)."""
        try:
            answer = self._client.get("/sdapi/v1/progress", params={"skip_current_image": "false"},
                                      timeout=min(10.0, self.remote.timeout))
            data = answer.json() if answer.status_code == 200 else {}
            fraction = min(1.0, max(0.0, float(data.get("progress") or 0.0)))
        except (httpx.HTTPError, ValueError, TypeError) as exc:
            log.debug("progress of remote %s unavailable: %s", self.remote.id, exc)
            return last
        steps, count = max(1, params.steps), params.num_images
        done = max(last.image_index * steps + last.step, round(fraction * steps * count))  # never backwards
        index = min(count - 1, done // steps)
        return StepEvent(index, count, done - index * steps, steps, preview=_image_or_none(data.get("current_image")))

    def _interrupt(self) -> None:
        try:
            self._client.post("/sdapi/v1/interrupt", timeout=10.0)
        except httpx.HTTPError as exc:  # the job is failed or canceled here either way
            log.warning("could not interrupt remote %s: %s", self.remote.id, exc)

    def _output(self, answer: httpx.Response, params: GenerationParams) -> GenerationOutput:
        if answer.status_code != 200:
            raise RemoteEngineError(f"remote engine {self.remote.id} at {self.remote.url} answered HTTP "
                                    f"{answer.status_code}: {error_text(answer)}")
        data = answer.json()
        info = _info(data.get("info"))
        if info.get("interrupted"):  # sdedge: the job was interrupted there (by someone else)
            raise RemoteEngineError(f"remote engine {self.remote.id}: the job was interrupted on the remote server")
        images = [_decode(item) for item in data["images"]]
        if len(images) == params.num_images + 1:  # A1111 puts a grid first when a batch has several images
            images = images[1:]
        if not images:
            raise RemoteEngineError(f"remote engine {self.remote.id} returned no image")
        seeds = [int(s) for s in info.get("all_seeds") or []][:len(images)]
        if len(seeds) != len(images):
            seeds = [params.seed_for(i) for i in range(len(images))]
        return GenerationOutput(images, seeds, {"remote_ms": round(answer.elapsed.total_seconds() * 1000, 3)})


def request_for(params: GenerationParams, inputs: ImageInputs, checkpoint: str | None) -> tuple[str, dict[str, Any]]:
    """The A1111 route and JSON body of one job (inputs are already fitted to the output size)."""
    body: dict[str, Any] = {
        "prompt": params.prompt, "negative_prompt": params.negative_prompt, "steps": params.steps,
        "cfg_scale": params.guidance_scale, "width": params.width, "height": params.height, "seed": params.seed,
        "sampler_name": a1111_name(params.sampler), "batch_size": params.num_images, "n_iter": 1,
        "send_images": True, "save_images": False,
    }
    if checkpoint:
        body["override_settings"] = {"sd_model_checkpoint": checkpoint}
        body["override_settings_restore_afterwards"] = True
    if params.mode == "text2img":
        return "/sdapi/v1/txt2img", body
    if params.mode not in ("img2img", "inpaint") or inputs.image is None:
        raise RemoteEngineError(f"an AUTOMATIC1111 remote cannot run {params.mode}")
    body.update(init_images=[_png_base64(inputs.image)], denoising_strength=params.strength, resize_mode=0)
    if params.mode == "inpaint" and inputs.mask is not None:
        # the mask is already blurred and fitted here; keep the rest of the picture (inpainting_fill 1: original)
        body.update(mask=_png_base64(inputs.mask), mask_blur=0, inpainting_fill=1, inpaint_full_res=False,
                    inpainting_mask_invert=0)
    return "/sdapi/v1/img2img", body


def error_text(answer: httpx.Response) -> str:
    """The remote's own words for an error answer: A1111's detail/error, sdedge's error.message, or the text."""
    try:
        data = answer.json()
    except ValueError:
        return answer.text.strip()[:300] or answer.reason_phrase
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("detail", "errors", "error", "message"):
            if data.get(key):
                value = data[key]
                return value if isinstance(value, str) else json.dumps(value)[:300]
    return json.dumps(data)[:300]


def _info(value: Any) -> dict[str, Any]:
    try:
        info = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _png_base64(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def _decode(item: str) -> Image.Image:
    data = base64.b64decode(item.split(",", 1)[1] if item.startswith("data:") else item, validate=True)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def _image_or_none(item: Any) -> Image.Image | None:
    if not isinstance(item, str) or not item:
        return None
    try:
        return _decode(item)
    except (ValueError, OSError):
        return None
