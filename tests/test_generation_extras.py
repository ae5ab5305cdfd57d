"""sdedge.generation_extras: a job's LoRAs, preset and decoder are checked against the model the job runs on.

The default model is the SD 1.5 fixture; MODELS_DIR holds the SDXL and FLUX fixtures (named so nothing
hints at their family). Every request names its model; the real engine runs the jobs that are accepted.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conftest import FIXTURE_MODEL, make_settings, start_app, wait_for

FIXTURES = FIXTURE_MODEL.parent
LORAS = FIXTURES / "loras"
BASE = {"prompt": "a lighthouse", "seed": 5, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    root = tmp_path_factory.mktemp("extras")
    loras = root / "loras"
    loras.mkdir()
    for name in ("tiny-kohya", "tiny-xl-kohya"):
        shutil.copy(LORAS / f"{name}.safetensors", loras / f"{name}.safetensors")
    # stand-ins for latent-consistency/lcm-lora-sdv1-5 and lcm-lora-sdxl, each in its family's layout
    shutil.copy(LORAS / "tiny-lcm-layout.safetensors", loras / "lcm-lora-sdv1-5.safetensors")
    shutil.copy(LORAS / "tiny-xl-kohya.safetensors", loras / "lcm-lora-sdxl.safetensors")
    models = root / "library"
    models.mkdir()
    (models / "second").symlink_to(FIXTURES / "tiny-sdxl-int8-ov", target_is_directory=True)
    (models / "third").symlink_to(FIXTURES / "tiny-flux-int8-ov", target_is_directory=True)
    app = start_app(make_settings(root, models_dir=models, lora_dir=loras))
    assert app.extensions["sdedge"].loader.ready
    yield app
    app.extensions["sdedge"].shutdown()


@pytest.fixture(autouse=True)
def _stop_apps() -> None:
    """The module's app lives for the module (conftest's would stop it after the first test)."""


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="module")
def ids(app: Flask) -> dict[str, str]:
    """family -> model id, as /models lists them."""
    models = app.test_client().get("/models").get_json()["models"]
    found = {m["family"]: m["id"] for m in models if m["installed"]}
    assert {"sd", "sdxl", "flux"} <= set(found), found
    assert next(m for m in models if m["default"])["family"] == "sd"
    return found


def run(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    reply = client.post("/generate/text2img", json={**BASE, **fields})
    assert reply.status_code == 202, reply.get_json()
    job_id = reply.get_json()["id"]
    job = wait_for(lambda: (j := client.get(f"/jobs/{job_id}").get_json())["status"]
                   in ("completed", "failed", "canceled") and j, timeout=300)
    assert job["status"] == "completed", job.get("error")
    return job


def refused(client: FlaskClient, **fields: Any) -> dict[str, Any]:
    reply = client.post("/generate/text2img", json={**BASE, **fields})
    assert reply.status_code == 400, reply.get_json()
    found: dict[str, Any] = reply.get_json()["error"]
    return found


def test_an_sdxl_lora_is_checked_against_the_sdxl_model_the_job_names(client: FlaskClient, ids: dict[str, str]) -> None:
    plain = run(client, model=ids["sdxl"], num_inference_steps=2)
    job = run(client, model=ids["sdxl"], num_inference_steps=2, loras=[{"name": "tiny-xl-kohya", "weight": 1}])
    assert job["model"] == ids["sdxl"] and job["result"]["parameters"]["loras"][0]["name"] == "tiny-xl-kohya"
    assert client.get(job["result"]["urls"][0]).data != client.get(plain["result"]["urls"][0]).data
    tagged = run(client, model=ids["sdxl"], num_inference_steps=2, prompt="a lighthouse <lora:tiny-xl-kohya:1>")
    assert tagged["model"] == ids["sdxl"]


def test_a_lora_of_another_family_than_the_jobs_model_is_a_400_naming_both(client: FlaskClient,
                                                                           ids: dict[str, str]) -> None:
    found = refused(client, model=ids["sdxl"], loras=[{"name": "tiny-kohya", "weight": 1}])
    assert "tiny-kohya" in found["message"] and ids["sdxl"] in found["message"]
    found = refused(client, prompt="x <lora:tiny-xl-kohya:1>")  # the default model is SD 1.5
    assert "tiny-xl-kohya" in found["message"] and "SDXL" in found["message"] and ids["sd"] in found["message"]
    assert run(client, num_inference_steps=2, loras=[{"name": "tiny-kohya", "weight": 1}])["model"] == ids["sd"]


def test_preset_fast_follows_the_jobs_model(client: FlaskClient, ids: dict[str, str]) -> None:
    def params(job: dict[str, Any]) -> tuple[Any, ...]:
        p = job["result"]["parameters"]
        return p["steps"], p["guidance_scale"], p["sampler"], [lora["name"] for lora in p["loras"]]

    assert params(run(client, preset="fast")) == (4, 1.0, "lcm", ["lcm-lora-sdv1-5"])
    assert params(run(client, preset="fast", model=ids["sdxl"])) == (4, 1.0, "lcm", ["lcm-lora-sdxl"])
    one_step = run(client, preset="fast", model=ids["flux"])  # a distilled family: one step, its own scheduler
    assert params(one_step) == (1, 0.0, "auto", []) and one_step["model"] == ids["flux"]


def test_the_tiny_decoder_is_checked_on_the_jobs_model(client: FlaskClient, ids: dict[str, str]) -> None:
    found = refused(client, model=ids["sdxl"], decoder="tiny")
    assert ids["sdxl"] in found["message"] and "--tiny-autoencoder" in found["message"]
    assert found["details"][0]["field"] == "decoder"
    assert run(client, num_inference_steps=2, decoder="tiny")["result"]["parameters"]["decoder"] == "tiny"


def test_presets_and_loras_list_for_the_model_named(client: FlaskClient, ids: dict[str, str]) -> None:
    presets = client.get(f"/presets?model={ids['sdxl']}").get_json()
    assert presets["family"] == "sdxl" and presets["model"] == ids["sdxl"]
    fast = next(p for p in presets["presets"] if p["name"] == "fast")
    assert [lora["name"] for lora in fast["loras"]] == ["lcm-lora-sdxl"]
    assert client.get("/presets").get_json()["family"] == "sd"  # the default model's
    flux = client.get(f"/presets?model={ids['flux']}").get_json()["presets"][0]
    assert (flux["steps"], flux["sampler"]) == (1, "auto")
    fits = {item["name"]: item["fits_model"] for item in client.get(f"/loras?model={ids['sdxl']}").get_json()["loras"]}
    assert fits["tiny-xl-kohya"] is True and fits["tiny-kohya"] is False
    fits = {item["name"]: item["fits_model"] for item in client.get("/loras").get_json()["loras"]}
    assert fits["tiny-xl-kohya"] is False and fits["tiny-kohya"] is True
    unknown = client.get("/presets?model=nope")
    assert unknown.status_code == 400 and ids["sdxl"] in unknown.get_json()["error"]["message"]
