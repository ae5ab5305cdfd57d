"""Replays of the HTTP calls Open WebUI's backend makes to an image server (read from open-webui 0.12.4,
the PyPI wheel's `open_webui/routers/images.py` and `open_webui/config.py`; line numbers refer to them).

Automatic1111 engine (`IMAGE_GENERATION_ENGINE=automatic1111`), header on every call
`authorization: Basic base64(AUTOMATIC1111_API_AUTH)` (`get_automatic1111_api_auth`, L323-330). The
setting defaults to '' (config.py L1379), so without credentials Open WebUI still sends `Basic ` with an
empty value; only a None setting sends an empty header.
- verify (POST /api/v1/images/verify, L339-360): GET /sdapi/v1/options, must be 2xx.
- model list (GET /api/v1/images/models, L421-433): GET /sdapi/v1/sd-models, reads `title` (id) and
  `model_name` (name).
- set model (`set_image_model`, L173-200, on saving the settings and before an admin's generation):
  GET /sdapi/v1/options, and when `sd_model_checkpoint` differs, POST /sdapi/v1/options with the whole
  options object it got, `sd_model_checkpoint` replaced; errors are only logged.
- generate (`image_generations`, L800-858): GET /sdapi/v1/options (`get_image_model`, L203-225, reads
  `sd_model_checkpoint`), then POST /sdapi/v1/txt2img `{prompt, batch_size: n, width, height, steps,
  [negative_prompt], **AUTOMATIC1111_PARAMS}` (size from IMAGE_SIZE '512x512', steps from IMAGE_STEPS 50);
  no status check: it reads `images[]` (bare base64, MIME sniffed by Pillow) and `info`.
OpenAI engine (`openai`), `Authorization: Bearer IMAGES_OPENAI_API_KEY` (sent even when the key is ''):
- generate (L627-676): POST {IMAGES_OPENAI_API_BASE_URL}/images/generations (`?api-version=` when set)
  JSON `{model: IMAGE_GENERATION_MODEL or "dall-e-2", prompt, n: 1, size, response_format: "b64_json"
  (left out for models matching ^gpt-image), **IMAGES_OPENAI_API_PARAMS}`, raise_for_status, reads
  `data[].url` (fetched, with the Bearer header when on the same origin) or `data[].b64_json`.
- model list: a fixed list (dall-e-2, dall-e-3, gpt-image-1, gpt-image-1.5); nothing is asked of the server.
- edit (`image_edits`, L984-1050): POST {IMAGES_EDIT_OPENAI_API_BASE_URL}/images/edits, multipart:
  `model` (IMAGE_EDIT_MODEL, '' by default), `prompt`, `n`/`size`/`background` only when set,
  `response_format=b64_json`, file `image` (one) or `image[]` (several) named `<uuid>.png`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from .http import Reply, StepFailed, basic_auth, call, join, multipart, png, png_size

CLIENT = "Open WebUI"
TIMEOUT = 300.0  # aiohttp's session here has no per-call limit; a generation may take minutes


def auth_header(auth: str | None) -> dict[str, str]:
    """`get_automatic1111_api_auth`: '' when the setting is None, else Basic of the raw string."""
    return {"authorization": "" if auth is None else basic_auth(auth)}


def _json(reply: Reply, step: str) -> Any:
    try:
        return reply.json()
    except ValueError as exc:
        raise StepFailed(CLIENT, step, str(exc), reply) from None


def verify(base_url: str, auth: str | None = "") -> None:
    """The admin's "verify connection" button: GET /sdapi/v1/options must succeed."""
    reply = call("GET", join(base_url, "/sdapi/v1/options"), headers=auth_header(auth))
    if not 200 <= reply.status < 300:
        raise StepFailed(CLIENT, "verify: GET /sdapi/v1/options", reply.short(), reply)


def list_models(base_url: str, auth: str | None = "") -> list[dict[str, str]]:
    """GET /sdapi/v1/sd-models, mapped to {id: title, name: model_name} as Open WebUI shows them."""
    reply = call("GET", join(base_url, "/sdapi/v1/sd-models"), headers=auth_header(auth))
    models = _json(reply, "models: GET /sdapi/v1/sd-models")
    try:
        return [{"id": m["title"], "name": m["model_name"]} for m in models]
    except (KeyError, TypeError):
        raise StepFailed(CLIENT, "models: read title/model_name", reply.short(), reply) from None


def set_model(base_url: str, model: str, auth: str | None = "") -> int | None:
    """`set_image_model`: GET options, POST them back with the new checkpoint; the POST's status (None: skipped)."""
    reply = call("GET", join(base_url, "/sdapi/v1/options"), headers=auth_header(auth))
    options = _json(reply, "set model: GET /sdapi/v1/options")
    if not isinstance(options, dict) or "sd_model_checkpoint" not in options:
        raise StepFailed(CLIENT, "set model: read sd_model_checkpoint", reply.short(), reply)
    if model == options["sd_model_checkpoint"]:
        return None
    options["sd_model_checkpoint"] = model
    posted = call("POST", join(base_url, "/sdapi/v1/options"), json_body=options, headers=auth_header(auth))
    return posted.status  # Open WebUI only logs a failure here (log.debug)


def txt2img(base_url: str, prompt: str, *, auth: str | None = "", size: str = "512x512", steps: int | None = 50,
            n: int = 1, negative_prompt: str | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The generation: GET options (current model), POST txt2img, decode images[] and keep info."""
    reply = call("GET", join(base_url, "/sdapi/v1/options"), headers=auth_header(auth))
    options = _json(reply, "generate: GET /sdapi/v1/options")
    if not isinstance(options, dict) or "sd_model_checkpoint" not in options:
        raise StepFailed(CLIENT, "generate: read sd_model_checkpoint", reply.short(), reply)
    width, height = (int(v) for v in size.split("x"))
    data: dict[str, Any] = {"prompt": prompt, "batch_size": n, "width": width, "height": height}
    if steps is not None:
        data["steps"] = steps
    if negative_prompt is not None:
        data["negative_prompt"] = negative_prompt
    data.update(params or {})
    reply = call("POST", join(base_url, "/sdapi/v1/txt2img"), json_body=data, headers=auth_header(auth),
                 timeout=TIMEOUT)
    res = _json(reply, "generate: POST /sdapi/v1/txt2img")
    if not isinstance(res, dict) or "images" not in res or "info" not in res:
        raise StepFailed(CLIENT, "generate: read images and info", reply.short(), reply)
    images = [_image_data(value, "generate: decode images[]") for value in res["images"]]
    if len(images) != n:
        raise StepFailed(CLIENT, "generate: count images", f"{len(images)} images for batch_size {n}", reply)
    return {"model": options["sd_model_checkpoint"], "images": images, "info": res["info"], "request": data}


def _image_data(value: Any, step: str) -> bytes:
    """`get_image_data`: a data URL is split at the comma, anything else is base64 that Pillow must open."""
    if not isinstance(value, str):
        raise StepFailed(CLIENT, step, f"not a string: {type(value).__name__}")
    try:
        raw = base64.b64decode(value.split(",", 1)[1] if "," in value else value)
        png_size(raw)  # Open WebUI opens it with Pillow to find the MIME type; ours are PNGs
    except (ValueError, binascii.Error) as exc:
        raise StepFailed(CLIENT, step, str(exc)) from None
    return raw


def a1111_session(base_url: str, *, auth: str | None = "", prompt: str = "a lighthouse at dusk",
                  size: str = "512x512", steps: int = 50) -> dict[str, Any]:
    """An admin configures the Automatic1111 engine, picks the listed model, and a chat asks for an image."""
    verify(base_url, auth)
    models = list_models(base_url, auth)
    if not models:
        raise StepFailed(CLIENT, "models: pick one", "the server lists no model")
    status = set_model(base_url, models[0]["id"], auth)
    if status is not None and not 200 <= status < 300:
        raise StepFailed(CLIENT, "set model: POST /sdapi/v1/options", f"HTTP {status} for the listed title")
    return {"models": models, **txt2img(base_url, prompt, auth=auth, size=size, steps=steps)}


def openai_session(api_base_url: str, *, key: str = "", model: str = "", prompt: str = "a lighthouse at dusk",
                   size: str = "512x512", n: int = 1, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST {base}/images/generations as the OpenAI engine sends it; the images as PNG bytes."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    chosen = model or "dall-e-2"
    data: dict[str, Any] = {"model": chosen, "prompt": prompt, "n": n}
    if size:
        data["size"] = size
    if not chosen.startswith("gpt-image"):
        data["response_format"] = "b64_json"
    data.update(params or {})
    reply = call("POST", api_base_url.rstrip("/") + "/images/generations", json_body=data, headers=headers,
                 timeout=TIMEOUT)
    return {"request": data, "images": _openai_images(reply, api_base_url, headers, "generate")}


def openai_edit(api_base_url: str, *, key: str = "", model: str = "", prompt: str = "make it blue",
                size: str | None = None, images: int = 1) -> dict[str, Any]:
    """POST {base}/images/edits as multipart, one `image` or several `image[]` files."""
    fields = {"model": model, "prompt": prompt, **({"size": size} if size else {})}
    if not model.startswith("gpt-image"):
        fields["response_format"] = "b64_json"
    name = "image" if images == 1 else "image[]"
    files = {f"{name}#{i}": (f"{uuid.uuid4()}.png", png(64, 64), "image/png") for i in range(images)}
    body, content_type = _with_repeated_files(fields, files)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
    reply = call("POST", api_base_url.rstrip("/") + "/images/edits", data=body, headers=headers, timeout=TIMEOUT)
    return {"request": fields, "images": _openai_images(reply, api_base_url, headers, "edit")}


def _with_repeated_files(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """multipart() keys files by name; aiohttp repeats `image[]`, so the '#i' suffix is dropped here."""
    body, content_type = multipart(fields, files)
    for key in files:
        body = body.replace(f'name="{key}"'.encode(), f'name="{key.split("#")[0]}"'.encode())
    return body, content_type


def _openai_images(reply: Reply, api_base_url: str, headers: dict[str, str], what: str) -> list[bytes]:
    step = f"{what}: POST /images/{'generations' if what == 'generate' else 'edits'}"
    if not 200 <= reply.status < 300:
        raise StepFailed(CLIENT, step, reply.short(), reply)  # raise_for_status
    res = _json(reply, step)
    out = []
    for item in res.get("data", []) if isinstance(res, dict) else []:
        if item.get("url"):
            got = call("GET", join(api_base_url, item["url"]), headers={"Authorization": headers["Authorization"]})
            if got.status != 200 or not got.content_type.startswith("image/"):
                raise StepFailed(CLIENT, f"{what}: fetch data[].url", got.short(), got)
            out.append(got.body)
        else:
            out.append(_image_data(item.get("b64_json"), f"{what}: decode data[].b64_json"))
    if not out:
        raise StepFailed(CLIENT, f"{what}: read data[]", reply.short(), reply)
    return out
