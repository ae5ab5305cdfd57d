"""The Stability AI client against the local stand-in of the documented API: requests, answers, every error
answer, and a remote model's jobs through sdedge's queue."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import make_settings, start_app, wait_for
from sdedge.engine.params import GenerationParams, ImageInputs, StepEvent
from sdedge.errors import GenerationCanceled, RemoteEngineError
from sdedge.remote.models import RemoteModel
from sdedge.remote.stability_client import StabilityClient, aspect_ratio
from serverproc import free_port
from standins.stability import StabilityStandIn


@pytest.fixture
def api() -> Iterator[StabilityStandIn]:
    with StabilityStandIn() as standin:
        yield standin


def remote(api_url: str, key: str | None = "sk-test", model: str | None = None) -> RemoteModel:
    return RemoteModel("sai", "Stability", "stability", api_url, model, 30.0, key)


def params(**overrides: Any) -> GenerationParams:
    values: dict[str, Any] = {"prompt": "a lighthouse", "negative_prompt": "fog", "width": 768, "height": 512,
                              "steps": 20, "guidance_scale": 7.0, "sampler": "euler_a", "seed": 42}
    return GenerationParams(**{**values, **overrides})


def steps(log: list[StepEvent]) -> Any:
    def on_step(event: StepEvent) -> bool:
        log.append(event)
        return False
    return on_step


def test_aspect_ratio_is_the_nearest_documented_one() -> None:
    assert [aspect_ratio(*size) for size in ((512, 512), (768, 512), (512, 768), (1024, 576), (2048, 512))] == \
        ["1:1", "3:2", "2:3", "16:9", "21:9"]


def test_text_to_image_on_core_sends_the_documented_form(api: StabilityStandIn) -> None:
    client, events = StabilityClient(remote(api.base_url)), []
    output = client.generate(params(num_images=2), ImageInputs(), steps(events))
    sent = api.received[-2:]
    assert [r.path for r in sent] == ["/v2beta/stable-image/generate/core"] * 2
    assert sent[0].headers["authorization"] == "Bearer sk-test" and sent[0].headers["accept"] == "image/*"
    assert sent[0].fields == {"prompt": "a lighthouse", "negative_prompt": "fog", "output_format": "png",
                              "seed": "42", "aspect_ratio": "3:2"}
    assert sent[1].fields["seed"] == "43" and output.seeds == [42, 43]
    assert [image.size for image in output.images] == [(76, 52)] * 2  # 1216x832 at the stand-in's 1/16
    assert [(e.image_index, e.step) for e in events][-1] == (1, 1)
    assert api.credits() == 94.0  # core: 3 credits an image


def test_image_to_image_and_inpainting_routes(api: StabilityStandIn) -> None:
    picture, mask = Image.new("RGB", (64, 64), "#204080"), Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    sd3 = StabilityClient(remote(api.base_url, model="sd3.5-medium"))
    out = sd3.generate(params(mode="img2img", strength=0.6, width=64, height=64), ImageInputs(image=picture),
                       steps([]))
    sent = api.received[-1]
    assert sent.path.endswith("/generate/sd3") and sent.fields["mode"] == "image-to-image"
    assert sent.fields["model"] == "sd3.5-medium" and sent.fields["strength"] == "0.6" and "image" in sent.files
    assert out.images[0].size == (64, 64)
    out = sd3.generate(params(mode="inpaint", width=64, height=64), ImageInputs(image=picture, mask=mask), steps([]))
    sent = api.received[-1]
    assert sent.path == "/v2beta/stable-image/edit/inpaint" and {"image", "mask"} <= set(sent.files)
    assert out.images[0].getpixel((60, 10)) == (0x20, 0x40, 0x80)  # outside the mask: the input's pixels
    with pytest.raises(RemoteEngineError, match="no image-to-image"):
        StabilityClient(remote(api.base_url)).generate(params(mode="img2img"), ImageInputs(image=picture), steps([]))


@pytest.mark.parametrize("prompt, key, expected", [
    ("a lighthouse", "sk-wrong", "HTTP 401 unauthorized: Incorrect API key provided (check the API key"),
    ("something forbidden", "sk-test", "HTTP 403 content_moderation: Your request was flagged"),
    ("nicht-englisch bitte", "sk-test", "HTTP 422 invalid_language: English is the only supported language"),
    ("explode", "sk-test", "HTTP 500 internal_error: An unexpected server error"),
    ("a filtered scene", "sk-test", "finished with CONTENT_FILTERED"),
])
def test_error_answers_fail_with_the_api_s_reason(api: StabilityStandIn, prompt: str, key: str,
                                                   expected: str) -> None:
    with pytest.raises(RemoteEngineError) as caught:
        StabilityClient(remote(api.base_url, key=key)).generate(params(prompt=prompt), ImageInputs(), steps([]))
    assert expected in caught.value.message and caught.value.code == "remote_engine_failed"


def test_credits_rate_limit_bad_parameters_and_an_unreachable_api() -> None:
    with StabilityStandIn(keys={"sk-test": 4.0}, rate_limit=2) as api:
        client = StabilityClient(remote(api.base_url))
        client.generate(params(), ImageInputs(), steps([]))
        with pytest.raises(RemoteEngineError, match="HTTP 402 payment_required.*no credits left"):
            client.generate(params(), ImageInputs(), steps([]))
        with pytest.raises(RemoteEngineError, match="HTTP 429 rate_limit_exceeded"):
            client.generate(params(), ImageInputs(), steps([]))
    with StabilityStandIn() as api:
        with pytest.raises(RemoteEngineError, match="HTTP 400 bad_request: prompt: cannot be empty"):
            StabilityClient(remote(api.base_url)).generate(params(prompt=" "), ImageInputs(), steps([]))
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RemoteEngineError, match=f"remote engine sai at {nowhere}: cannot connect"):
        StabilityClient(remote(nowhere)).generate(params(), ImageInputs(), steps([]))


def test_a_cancel_before_the_request_sends_nothing(api: StabilityStandIn) -> None:
    with pytest.raises(GenerationCanceled):
        StabilityClient(remote(api.base_url)).generate(params(), ImageInputs(), lambda event: True)
    assert api.received == []


# -- through the queue ----------------------------------------------------------------------------------
def test_jobs_for_the_stability_model_run_through_the_queue(tmp_path: Path, api: StabilityStandIn,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_STABILITY_KEY", "sk-test")
    entry = {"id": "sai-core", "kind": "stability", "url": api.base_url, "key_env": "MY_STABILITY_KEY"}
    app = start_app(make_settings(tmp_path, remote_engines=[entry], worker_poll_seconds=0.2))
    client = app.test_client()
    job = client.post("/generate/text2img", json={"prompt": "a lighthouse", "model": "sai-core", "seed": 5}).get_json()
    assert job["model"] == "sai-core"
    done = wait_for(lambda: (j := client.get(f"/jobs/{job['id']}").get_json())["status"] in ("completed", "failed")
                    and j, timeout=60)
    assert done["status"] == "completed", done["error"]
    assert done["result"]["worker"] == {"label": "remote-sai-core", "device": None, "remote": "sai-core"}
    assert done["result"]["seeds"] == [5]
    image = client.get(done["result"]["urls"][0])
    assert image.status_code == 200
    with Image.open(io.BytesIO(image.data)) as png:
        assert png.size == (64, 64) and "Model: sai-core" in png.info["parameters"]
    failed = client.post("/generate/text2img", json={"prompt": "explode", "model": "sai-core"}).get_json()
    failed = wait_for(lambda: (j := client.get(f"/jobs/{failed['id']}").get_json())["status"] == "failed" and j,
                      timeout=60)
    assert failed["errorDetail"]["code"] == "remote_engine_failed" and "HTTP 500 internal_error" in failed["error"]
    local = client.post("/generate/text2img", json={"prompt": "local", "steps": 1}).get_json()
    local = wait_for(lambda: (j := client.get(f"/jobs/{local['id']}").get_json())["status"] == "completed" and j,
                     timeout=120)
    assert local["model"] == "tiny-sd-int8-ov" and local["result"]["worker"]["label"] == "CPU"  # the local device ran it


def test_requests_a_remote_model_cannot_run_are_refused(tmp_path: Path, api: StabilityStandIn) -> None:
    engines = [{"id": "sai-core", "kind": "stability", "url": api.base_url, "key": "sk-test"},
               {"id": "sai-nokey", "kind": "stability", "url": api.base_url}]
    app = start_app(make_settings(tmp_path, remote_engines=engines))
    client = app.test_client()
    with_device = client.post("/generate/text2img", json={"prompt": "x", "model": "sai-core", "device": "GPU"})
    assert with_device.status_code == 400 and with_device.get_json()["error"]["details"][0]["field"] == "device"
    img2img = client.post("/generate/img2img", json={"prompt": "x", "model": "sai-core", "init_image": _data_url()})
    assert img2img.status_code == 400 and "cannot run img2img" in img2img.get_json()["error"]["message"]
    no_key = client.post("/generate/text2img", json={"prompt": "x", "model": "sai-nokey"})
    assert no_key.status_code == 503 and "STABILITY_API_KEY" in no_key.get_json()["error"]["message"]
    assert api.received == []


def _data_url() -> str:
    import base64

    out = io.BytesIO()
    Image.new("RGB", (64, 64), "#3a7bd5").save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
