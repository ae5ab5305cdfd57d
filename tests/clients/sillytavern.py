"""Replays of the HTTP calls SillyTavern's server makes for its "Stable Diffusion Web UI (AUTOMATIC1111)"
image source (read from the npm package sillytavern 1.19.0: `src/endpoints/stable-diffusion.js` and the
browser side `public/scripts/extensions/stable-diffusion/index.js`; line numbers refer to them).

The browser posts `{url, auth, ...}` to SillyTavern's own `/api/sd/*`; its server then calls the
A1111 server with `Authorization: Basic base64(auth)` on every request (`getBasicAuthHeader`,
src/util.js L126-129, so `Basic ` with an empty value when no credentials are set) and sets
`url.pathname = '/sdapi/v1/...'`, i.e. the A1111 API must sit at the root of the URL the user types.
- Connect (`validateAutoUrl` index.js L1347): /api/sd/ping -> GET /sdapi/v1/options, must be ok (L31-52).
- Then `loadSettingOptions` (index.js L608) in parallel:
  samplers -> GET /sdapi/v1/samplers, `name` of each (L140-164);
  models -> GET /sdapi/v1/options `sd_model_checkpoint` (get-model, L218-236), GET /sdapi/v1/sd-models
  `title` of each (L192-216), upscalers -> GET /sdapi/v1/upscalers AND GET /sdapi/v1/latent-upscale-modes,
  both must be ok, `name` of each (L54-106; a failure leaves the hires-fix list at N/A);
  schedulers -> GET /sdapi/v1/schedulers `name` (L166-190);
  VAEs -> GET /sdapi/v1/sd-vae and /sdapi/v1/sd-modules (Forge), the first ok array, `model_name` (L108-138).
- Choosing a model (`updateAutoRemoteModel` index.js L1640): POST /sdapi/v1/options
  `{"sd_model_checkpoint": <title>}` must be ok, then up to 10 x GET /sdapi/v1/progress every 2 s until
  `progress === 0` and `state.job_count === 0` (L238-295).
- Generate (`generateAutoImage` index.js L3797, server L297-350): GET /sdapi/v1/options (looks for
  `forge_preset`), then POST /sdapi/v1/txt2img with the browser's whole body, `url` and `auth` included,
  reading `images[0]` as PNG base64; if the browser goes away first it POSTs /sdapi/v1/interrupt.
The OpenAI source is not replayed against sdedge: `/api/openai/generate-image` (src/endpoints/openai.js
L619-656) posts to the fixed `https://api.openai.com/v1/images/generations`; no base URL can be typed.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from .http import Reply, StepFailed, basic_auth, call, png_size

CLIENT = "SillyTavern"
DEFAULT_NEGATIVE = ("lowres, bad anatomy, bad hands, text, error, cropped, worst quality, low quality, normal "
                    "quality, jpeg artifacts, signature, watermark, username, blurry")
MODEL_WAIT_ATTEMPTS, MODEL_WAIT_INTERVAL = 10, 2.0


def _sdapi(url: str, path: str) -> str:
    """`new URL(url); url.pathname = path`: the typed URL's own path is replaced, not joined."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _get(url: str, auth: str, path: str, step: str) -> Reply:
    return call("GET", _sdapi(url, path), headers={"Authorization": basic_auth(auth)})


def _ok_json(reply: Reply, step: str) -> Any:
    if not 200 <= reply.status < 300:
        raise StepFailed(CLIENT, step, f"'SD WebUI returned an error.' ({reply.short()})", reply)
    try:
        return reply.json()
    except ValueError as exc:
        raise StepFailed(CLIENT, step, str(exc), reply) from None


def ping(url: str, auth: str = "") -> None:
    """The Connect button."""
    _ok_json(_get(url, auth, "/sdapi/v1/options", "ping"), "connect: GET /sdapi/v1/options")


def names(url: str, auth: str, path: str, key: str = "name") -> list[str]:
    """One of the listings, reduced to the field SillyTavern shows."""
    step = f"list: GET {path}"
    data = _ok_json(_get(url, auth, path, step), step)
    try:
        return [str(item[key]) for item in data]
    except (KeyError, TypeError):
        raise StepFailed(CLIENT, step, f"items without {key!r}: {str(data)[:200]}") from None


def vaes(url: str, auth: str = "") -> list[str]:
    """sd-vae (A1111) or sd-modules (Forge): the first that answers an array."""
    for path in ("/sdapi/v1/sd-vae", "/sdapi/v1/sd-modules"):
        reply = _get(url, auth, path, "vaes")
        if 200 <= reply.status < 300 and isinstance(data := reply.json(), list):
            return [str(item.get("model_name")) for item in data]
    raise StepFailed(CLIENT, "list: GET /sdapi/v1/sd-vae or /sdapi/v1/sd-modules", "neither answered an array")


def load_settings(url: str, auth: str = "") -> dict[str, Any]:
    """What the settings panel loads after Connect."""
    current = _ok_json(_get(url, auth, "/sdapi/v1/options", "get-model"), "get-model: GET /sdapi/v1/options")
    upscalers = names(url, auth, "/sdapi/v1/upscalers")
    latent = names(url, auth, "/sdapi/v1/latent-upscale-modes")
    return {"samplers": names(url, auth, "/sdapi/v1/samplers"), "model": current.get("sd_model_checkpoint"),
            "models": names(url, auth, "/sdapi/v1/sd-models", "title"),
            "upscalers": upscalers[:1] + latent + upscalers[1:], "schedulers": names(url, auth, "/sdapi/v1/schedulers"),
            "vaes": vaes(url, auth)}


def set_model(url: str, model: str, auth: str = "") -> int:
    """POST the checkpoint, then wait (bounded, as SillyTavern does) for progress 0 and no jobs."""
    reply = call("POST", _sdapi(url, "/sdapi/v1/options"), json_body={"sd_model_checkpoint": model},
                 headers={"Authorization": basic_auth(auth)})
    if not 200 <= reply.status < 300:
        raise StepFailed(CLIENT, "set-model: POST /sdapi/v1/options", reply.short(), reply)
    for attempt in range(MODEL_WAIT_ATTEMPTS):
        state = _ok_json(_get(url, auth, "/sdapi/v1/progress", "progress"), "set-model: GET /sdapi/v1/progress")
        if state.get("progress") == 0 and state.get("state", {}).get("job_count") == 0:
            return attempt + 1
        time.sleep(MODEL_WAIT_INTERVAL)  # SillyTavern's CHECK_INTERVAL
    return MODEL_WAIT_ATTEMPTS


def request_body(url: str, auth: str, prompt: str, **overrides: Any) -> dict[str, Any]:
    """The browser's payload with SillyTavern's defaults (index.js defaultSettings and generateAutoImage)."""
    body: dict[str, Any] = {
        "url": url, "auth": auth, "prompt": "best quality, absurdres, aesthetic," + prompt,
        "negative_prompt": DEFAULT_NEGATIVE, "sampler_name": "DDIM", "scheduler": "normal", "steps": 20,
        "cfg_scale": 7, "width": 512, "height": 512, "restore_faces": False, "enable_hr": False,
        "hr_upscaler": "Latent", "hr_scale": 1.0, "hr_additional_modules": [], "denoising_strength": 0.7,
        "hr_second_pass_steps": 0, "override_settings": {"CLIP_stop_at_last_layers": 1},
        "override_settings_restore_afterwards": True, "clip_skip": 1, "save_images": True, "send_images": True,
        "do_not_save_grid": False, "do_not_save_samples": False,
    }
    body.update(overrides)
    return body  # seed -1 is sent as `undefined`, i.e. left out of the JSON


def generate(url: str, prompt: str, auth: str = "", **overrides: Any) -> dict[str, Any]:
    """GET options (Forge check), POST txt2img with the whole body, decode images[0]."""
    options = _get(url, auth, "/sdapi/v1/options", "generate")
    if 200 <= options.status < 300 and "forge_preset" not in options.json():
        pass  # SillyTavern drops override_settings.forge_additional_modules, which it did not set here
    body = request_body(url, auth, prompt, **overrides)
    reply = call("POST", _sdapi(url, "/sdapi/v1/txt2img"), json_body=body,
                 headers={"Authorization": basic_auth(auth)}, timeout=600)
    data = _ok_json(reply, "generate: POST /sdapi/v1/txt2img")
    try:
        image = base64.b64decode(data["images"][0], validate=True)
        png_size(image)
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error) as exc:
        raise StepFailed(CLIENT, "generate: decode images[0]", f"{exc!r}: {reply.short()}", reply) from None
    # SillyTavern sends its credentials inside the body too; an echo of them in `parameters` leaks them.
    echoed = bool(auth) and auth in str(data.get("parameters", ""))
    return {"image": image, "info": data.get("info"), "request": body, "echoed_credentials": echoed}


def interrupt(url: str, auth: str = "") -> int:
    """What SillyTavern sends when the browser cancels a generation."""
    return call("POST", _sdapi(url, "/sdapi/v1/interrupt"), headers={"Authorization": basic_auth(auth)}).status


def a1111_session(url: str, *, auth: str = "", prompt: str = " a lighthouse at dusk",
                  **overrides: Any) -> dict[str, Any]:
    """Connect, load the panel, choose the listed model, generate one image."""
    ping(url, auth)
    settings = load_settings(url, auth)
    if not settings["models"]:
        raise StepFailed(CLIENT, "choose a model", "no model listed")
    waits = set_model(url, settings["models"][0], auth)
    return {"settings": settings, "model_waits": waits, **generate(url, prompt, auth, **overrides)}
