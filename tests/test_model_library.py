"""The model library with two fixture models of different families (SD 1.5 and SDXL) through the real engine."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from conftest import FIXTURE_MODEL, make_settings, start_app, stop_app, wait_for
from sdedge.catalog import CATALOG
from sdedge.config import Settings
from sdedge.model_library import ModelLibrary

SDXL_FIXTURE = FIXTURE_MODEL.parent / "tiny-sdxl-int8-ov"
FLUX_FIXTURE = FIXTURE_MODEL.parent / "tiny-flux-int8-ov"


def library_settings(tmp_path: Path, **overrides: object) -> Settings:
    """The SD fixture as the default model, the SDXL one (named so nothing hints at its family) under MODELS_DIR."""
    models_dir = tmp_path / "library"
    models_dir.mkdir(exist_ok=True)
    (models_dir / "my-model").symlink_to(SDXL_FIXTURE, target_is_directory=True)
    return make_settings(tmp_path, models_dir=models_dir, **overrides)


@pytest.fixture
def two_models(tmp_path: Path) -> Flask:
    return start_app(library_settings(tmp_path))


def _models(client: FlaskClient) -> dict[str, dict[str, Any]]:
    reply = client.get("/models")
    assert reply.status_code == 200
    return {m["id"]: m for m in reply.get_json()["models"]}


def _run(client: FlaskClient, model: str | None, seed: int = 7, **extra: Any) -> dict[str, Any]:
    body = {"prompt": "a lighthouse", "seed": seed, "num_inference_steps": 2, "width": 64, "height": 64, **extra}
    if model is not None:
        body["model"] = model
    reply = client.post("/generate/text2img", json=body)
    assert reply.status_code == 202, reply.get_json()
    job_id = reply.get_json()["id"]
    return wait_for(lambda: (j := client.get(f"/jobs/{job_id}").get_json())["status"] in
                    ("completed", "failed", "canceled") and j, timeout=300)


def _png(client: FlaskClient, job: dict[str, Any]) -> Image.Image:
    url = job["result"]["urls"][0]
    return Image.open(io.BytesIO(client.get(url).data))


def test_families_come_from_model_index_not_names(tmp_path: Path) -> None:
    library = ModelLibrary(library_settings(tmp_path))
    found = {m.id: m for m in library.models()}
    assert found["tiny-sd-int8-ov"].family_id == "sd" and found["tiny-sd-int8-ov"].is_default
    assert found["my-model"].family_id == "sdxl" and found["my-model"].source == "local"
    assert all(found[c.id].source == "catalog" and not found[c.id].installed for c in CATALOG)


def test_get_models_lists_both_fixtures_with_their_families_in_the_seed_shape(two_models: Flask) -> None:
    models = _models(two_models.test_client())
    sd, sdxl = models["tiny-sd-int8-ov"], models["my-model"]
    for model in (sd, sdxl):
        assert {"id", "name", "description", "type", "loaded", "version"} <= set(model)
        assert model["installed"] and model["size_bytes"] > 100_000 and model["modes"][0] == "text2img"
    assert (sd["family"], sdxl["family"]) == ("sd", "sdxl")
    assert sd["loaded"] and not sdxl["loaded"] and sd["default"]
    assert models["flux.1-schnell-int8-ov"]["family"] == "flux" and not models["flux.1-schnell-int8-ov"]["negative_prompt"]


def test_alternating_jobs_each_run_on_their_own_model(two_models: Flask) -> None:
    client = two_models.test_client()
    jobs = [_run(client, model) for model in ("tiny-sd-int8-ov", "my-model") * 2]
    assert [j["status"] for j in jobs] == ["completed"] * 4
    assert [j["model"] for j in jobs] == ["tiny-sd-int8-ov", "my-model"] * 2
    assert [j["result"]["model"] for j in jobs] == ["tiny-sd-int8-ov", "my-model"] * 2
    sd, sdxl = _png(client, jobs[0]), _png(client, jobs[1])
    assert sd.tobytes() != sdxl.tobytes()  # same seed, other model, other image
    assert _png(client, jobs[2]).tobytes() == sd.tobytes()  # and each model is still itself after switching
    assert "Model: my-model" in sdxl.info["parameters"] and "Model hash: " in sdxl.info["parameters"]
    health = client.get("/health").get_json()
    assert health["models"]["max_loaded_models"] == 1 and [m["model"] for m in health["models"]["loaded"]] == ["my-model"]


def test_unknown_model_is_a_400_listing_the_available_ones(two_models: Flask) -> None:
    reply = two_models.test_client().post("/generate/text2img", json={"prompt": "x", "model": "nope"})
    assert reply.status_code == 400
    error = reply.get_json()["error"]
    assert "my-model" in error["message"] and "tiny-sd-int8-ov" in error["details"][0]["available"]


def test_a1111_options_switch_the_default_and_override_settings_pick_per_request(two_models: Flask) -> None:
    client = two_models.test_client()
    listed = {m["title"]: m for m in client.get("/sdapi/v1/sd-models").get_json()}
    assert list(listed) == ["tiny-sd-int8-ov", "my-model"]  # installed ones, the default first
    sdxl_hash = listed["my-model"]["hash"]
    assert len(sdxl_hash) == 10 and sdxl_hash != listed["tiny-sd-int8-ov"]["hash"]
    sdxl_title = f"my-model [{sdxl_hash}]"  # A1111's "title [hash]" spelling is accepted too
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": sdxl_title}).status_code == 200
    assert client.get("/sdapi/v1/options").get_json()["sd_model_checkpoint"] == "my-model"
    body = {"prompt": "a lighthouse", "seed": 3, "steps": 2, "width": 64, "height": 64}
    info = json.loads(client.post("/sdapi/v1/txt2img", json=body).get_json()["info"])
    assert info["sd_model_name"] == "my-model" and info["sd_model_hash"] == sdxl_hash
    override = {**body, "override_settings": {"sd_model_checkpoint": "tiny-sd-int8-ov"}}
    info = json.loads(client.post("/sdapi/v1/txt2img", json=override).get_json()["info"])
    assert info["sd_model_name"] == "tiny-sd-int8-ov"
    bad = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "nope [0000]"})
    assert bad.status_code == 400 and "my-model" in bad.get_json()["error"]["message"]


def test_with_accounts_only_an_admin_changes_the_default_through_the_a1111_options(two_models: Flask) -> None:
    from authhelp import add_account

    alice, root = add_account(two_models, "alice"), add_account(two_models, "root", admin=True)
    client = two_models.test_client()
    refused = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "my-model"}, headers=alice.bearer)
    assert refused.status_code == 403, refused.get_json()
    error = refused.get_json()["error"]  # the A1111 surface's (sdedge's) error shape
    assert error["code"] == "forbidden" and "admin" in error["message"] and "override_settings" in error["message"]
    assert client.get("/sdapi/v1/options", headers=alice.bearer).get_json()["sd_model_checkpoint"] == "tiny-sd-int8-ov"
    # naming the default it already is changes nothing: clients send it when they connect
    same = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "tiny-sd-int8-ov", "CLIP_stop_at_last_layers": 1},
                       headers=alice.bearer)
    assert same.status_code == 200
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "my-model"}).status_code == 401
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "my-model"}, headers=root.bearer).status_code == 200
    assert client.get("/sdapi/v1/options", headers=alice.bearer).get_json()["sd_model_checkpoint"] == "my-model"


def test_openai_model_selects_and_unknown_is_a_400_listing_models(two_models: Flask) -> None:
    client = two_models.test_client()
    ids = [m["id"] for m in client.get("/v1/models").get_json()["data"]]
    assert ids == ["tiny-sd-int8-ov", "my-model"]
    body = {"prompt": "a lighthouse", "size": "64x64", "seed": 5, "num_inference_steps": 2}
    chosen = client.post("/v1/images/generations", json={**body, "model": "my-model"})
    default = client.post("/v1/images/generations", json={**body, "model": "dall-e-3"})
    assert chosen.status_code == default.status_code == 200
    assert chosen.get_json()["data"][0]["b64_json"] != default.get_json()["data"][0]["b64_json"]
    bad = client.post("/v1/images/generations", json={**body, "model": "gpt-image-1"})
    assert bad.status_code == 400 and bad.get_json()["error"]["param"] == "model"
    assert "my-model" in bad.get_json()["error"]["message"]


def test_family_rules_are_checked_at_submission(tmp_path: Path) -> None:
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "flux").symlink_to(FLUX_FIXTURE, target_is_directory=True)
    app = start_app(library_settings(tmp_path))
    client = app.test_client()
    odd = client.post("/generate/text2img", json={"prompt": "x", "model": "flux", "width": 72, "height": 64})
    assert odd.status_code == 400 and "multiples of 16" in odd.get_json()["error"]["message"]
    job = _run(client, "flux", negative_prompt="blurry", sampler="euler_a")
    assert job["status"] == "completed", job["error"]
    assert {a["field"] for a in job["adjusted"]} == {"negative_prompt", "sampler"}
    assert job["result"]["parameters"]["negative_prompt"] == "" and job["result"]["parameters"]["sampler"] == "auto"


def test_names_a_request_may_use(tmp_path: Path) -> None:
    library = ModelLibrary(library_settings(tmp_path))
    assert library.resolve(None).id == library.resolve("dall-e-3").id == "tiny-sd-int8-ov"
    assert library.resolve("MY-MODEL").id == library.resolve("my-model [0123456789]").id == "my-model"
    assert library.resolve("OpenVINO/FLUX.1-schnell-int8-ov").id == "flux.1-schnell-int8-ov"
    # seed 002's name for SD 1.5: the catalog's, served by the default SD model while that is not downloaded
    assert library.resolve("stable-diffusion-v1.5").id == "tiny-sd-int8-ov"
    with pytest.raises(Exception, match="available: tiny-sd-int8-ov, my-model"):
        library.resolve("sd-9000")


def test_a_model_not_installed_is_a_409_naming_the_download(two_models: Flask) -> None:
    reply = two_models.test_client().post("/generate/text2img", json={"prompt": "x", "model": "flux.1-schnell-int8-ov"})
    assert reply.status_code == 409
    assert "POST /models/flux.1-schnell-int8-ov/download" in reply.get_json()["error"]["message"]


def test_the_default_chosen_through_the_a1111_options_is_loaded_after_a_restart(tmp_path: Path) -> None:
    first = start_app(library_settings(tmp_path))
    assert first.test_client().post("/sdapi/v1/options", json={"sd_model_checkpoint": "my-model"}).status_code == 200
    stop_app(first)  # its engines go to the restarted app
    again = start_app(make_settings(tmp_path, models_dir=tmp_path / "library"))
    assert again.extensions["sdedge"].loader.startup_model == "my-model"
    assert again.test_client().get("/models").get_json()["default"] == "my-model"
