"""A client of the Stability AI REST API (v2beta Stable Image) running one job.

Text-to-image: `POST /v2beta/stable-image/generate/{core|ultra|sd3}`; image-to-image: `sd3` (mode
image-to-image) or `ultra` with `image` and `strength`; inpainting: `POST /v2beta/stable-image/edit/inpaint`
with `image` and `mask`. Every request is multipart/form-data with `authorization: Bearer <key>` and
`accept: image/*`: the answer is the image's bytes with `finish-reason` and `seed` headers. Sizes are the
API's: the request's width and height choose the nearest `aspect_ratio`. One image per request, so a job
of n images makes n requests (seed, seed+1, ...).

The API cannot be interrupted: a cancel is honoured between images and, during one, by leaving its
answer unread. Errors: an error answer `{id, name, errors: [...]}` is a RemoteEngineError naming the
status, `name` and the messages; a `CONTENT_FILTERED` finish fails the job too (the API blurred the
image); httpx's exceptions go through `foreign_errors.remote_errors`.
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import httpx
from PIL import Image

from sdedge.engine.params import GenerationOutput, GenerationParams, ImageInputs, StepCallback, StepEvent
from sdedge.errors import GenerationCanceled, RemoteEngineError, map_exceptions
from sdedge.foreign_errors import remote_errors
from sdedge.remote.models import RemoteModel

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
MAX_SEED = 4294967294  # the API's; 0 asks it for a random seed
ASPECT_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
_HINTS = {401: "check the API key (STABILITY_API_KEY or the entry's key_env)",
          402: "the account has no credits left", 403: "the request was refused by the API's moderation",
          429: "the API's rate limit was hit; retry later"}


def aspect_ratio(width: int, height: int) -> str:
    """The documented aspect ratio nearest to width:height."""
    wanted = width / height
    return min(ASPECT_RATIOS, key=lambda r: abs(_ratio(r) - wanted))


def _ratio(text: str) -> float:
    w, h = text.split(":")
    return int(w) / int(h)


class StabilityClient:
    """Runs generations on the Stability AI API with one key."""

    def __init__(self, remote: RemoteModel, poll_seconds: float = POLL_SECONDS,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.remote, self.poll_seconds = remote, poll_seconds
        self._client = httpx.Client(base_url=remote.url, transport=transport,
                                    timeout=httpx.Timeout(remote.timeout, connect=10.0),
                                    headers={"authorization": f"Bearer {remote.key or ''}", "accept": "image/*",
                                             "stability-client-id": "sdedge"})
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sdedge-stability-{remote.id}")

    def close(self) -> None:
        """Close the connections."""
        self._sender.shutdown(wait=False)
        self._client.close()

    def generate(self, params: GenerationParams, inputs: ImageInputs, on_step: StepCallback) -> GenerationOutput:
        """params.num_images images, one request each; GenerationCanceled when on_step says stop."""
        images, seeds = [], []
        with map_exceptions(remote_errors(self.remote.id, self.remote.url)):
            for index in range(params.num_images):
                path, fields, files = self.request_for(params, inputs, params.seed_for(index) % (MAX_SEED + 1))
                event = StepEvent(index, params.num_images, 0, 1)
                if on_step(event):
                    raise GenerationCanceled("generation canceled")
                # always multipart (the API refuses a urlencoded form): fields go as file-less parts
                parts: dict[str, Any] = {**{name: (None, value) for name, value in fields.items()}, **files}
                sent = self._sender.submit(self._client.post, path, files=parts)
                answer = self._await(sent, event, on_step)
                image, seed = self._image(answer)
                images.append(image)
                seeds.append(seed)
                on_step(StepEvent(index, params.num_images, 1, 1))
        return GenerationOutput(images, seeds)

    def request_for(self, params: GenerationParams, inputs: ImageInputs,
                    seed: int) -> tuple[str, dict[str, str], dict[str, tuple[str, bytes, str]]]:
        """The route, form fields and files of one image's request."""
        service = self.remote.stability_service
        fields = {"prompt": params.prompt, "output_format": "png", "seed": str(seed)}
        if params.negative_prompt and params.guidance_scale > 1:
            fields["negative_prompt"] = params.negative_prompt
        files: dict[str, tuple[str, bytes, str]] = {}
        if params.mode == "inpaint":
            if inputs.image is None or inputs.mask is None:
                raise RemoteEngineError("inpainting needs an image and a mask")
            files = {"image": ("image.png", _png(inputs.image), "image/png"),
                     "mask": ("mask.png", _png(inputs.mask.convert("L")), "image/png")}
            fields["grow_mask"] = "0"  # the mask is already blurred as asked (mask_blur)
            return "/v2beta/stable-image/edit/inpaint", fields, files
        if service == "sd3":
            if self.remote.model and self.remote.model.lower() != "sd3":
                fields["model"] = self.remote.model
            fields["cfg_scale"] = str(min(10.0, max(1.0, params.guidance_scale)))
        if params.mode == "img2img":
            if inputs.image is None or service == "core":
                raise RemoteEngineError(f"Stability's {service} service has no image-to-image; use sd3 or ultra")
            files = {"image": ("image.png", _png(inputs.image), "image/png")}
            fields["strength"] = str(params.strength)
            if service == "sd3":
                fields["mode"] = "image-to-image"
        elif params.mode == "text2img":
            fields["aspect_ratio"] = aspect_ratio(params.width, params.height)
        else:
            raise RemoteEngineError(f"the Stability AI API cannot run {params.mode}")
        return f"/v2beta/stable-image/generate/{service}", fields, files

    def _await(self, sent: Future[httpx.Response], event: StepEvent, on_step: StepCallback) -> httpx.Response:
        while True:
            done, _ = wait([sent], timeout=self.poll_seconds)
            if done:
                return sent.result()
            if on_step(event):  # the API cannot be stopped: its answer is left unread
                raise GenerationCanceled("generation canceled")

    def _image(self, answer: httpx.Response) -> tuple[Image.Image, int]:
        if answer.status_code != 200:
            raise RemoteEngineError(describe_error(self.remote.id, answer))
        reason = answer.headers.get("finish-reason", "SUCCESS")
        if reason != "SUCCESS":
            raise RemoteEngineError(f"remote engine {self.remote.id}: Stability AI finished with {reason} "
                                    "(the image was filtered by its content policy)")
        image = Image.open(io.BytesIO(answer.content))
        image.load()
        return image.convert("RGB"), int(answer.headers.get("seed") or 0)


def describe_error(remote_id: str, answer: httpx.Response) -> str:
    """One line from a documented error answer: status, name, messages, and what to do about it."""
    name, messages = "", ""
    try:
        data: Any = answer.json()
        name = str(data.get("name") or "")
        found = data.get("errors") or data.get("message") or []
        messages = "; ".join(found) if isinstance(found, list) else str(found)
    except (ValueError, AttributeError, TypeError):
        messages = answer.text.strip()[:300]
    hint = _HINTS.get(answer.status_code)
    text = f"remote engine {remote_id}: Stability AI answered HTTP {answer.status_code}"
    text += f" {name}" if name else ""
    text += f": {messages}" if messages else ""
    return text + (f" ({hint})" if hint else "")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
