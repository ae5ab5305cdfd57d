"""LoRA, presets and the decoder per request, on every surface, on the real engine and the tiny fixtures.

Must-shows of issue 17: same seed, weight 0 gives the bytes of no LoRA; weight 1 another image; two
LoRAs a third; a LoRA of another family is a 400 naming it; `preset: "fast"` runs its steps, guidance and
decoder, read back from the job's parameters and the PNG's infotext.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from conftest import make_settings, start_app, stop_app, wait_for

LORAS = Path(__file__).parent / "fixtures" / "loras"
BASE = {"prompt": "a red fox", "seed": 11, "width": 64, "height": 64, "num_inference_steps": 2}


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loras")
    for path in LORAS.glob("*.safetensors"):
        shutil.copy(path, folder / path.name)
    (folder / "styles").mkdir()
    shutil.copy(LORAS / "tiny-peft.safetensors", folder / "styles" / "peft-in-a-folder.safetensors")
    # stands in for latent-consistency/lcm-lora-sdv1-5 (kohya names on every UNet layer, as LCM-LoRA has)
    shutil.copy(LORAS / "tiny-lcm-layout.safetensors", folder / "lcm-lora-sdv1-5.safetensors")
    return folder


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, lora_dir: Path) -> Iterator[Flask]:
    settings = make_settings(tmp_path_factory.mktemp("srv"), lora_dir=lora_dir)
    app = start_app(settings)
    assert app.extensions["sdedge"].loader.ready
    yield app
    stop_app(app)


@pytest.fixture(autouse=True)
def _stop_apps() -> None:
    """The module's app lives for the module (conftest's would stop it after the first test)."""


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def image(client: FlaskClient, **fields: Any) -> tuple[bytes, dict[str, Any]]:
    response = client.post("/image", json={**BASE, **fields})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    png = client.get(body["urls"][0]).data
    return png, body


def pixels(png: bytes) -> str:
    return hashlib.sha256(Image.open(io.BytesIO(png)).convert("RGB").tobytes()).hexdigest()


def infotext(png: bytes) -> str:
    return str(Image.open(io.BytesIO(png)).info["parameters"])


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    found: dict[str, Any] = response.get_json()["error"]
    return found


# -- the must-shows ------------------------------------------------------------------------------
def test_weight_zero_is_the_image_without_the_lora_and_weights_blend(client: FlaskClient) -> None:
    plain, _ = image(client)
    zero, _ = image(client, loras=[{"name": "tiny-kohya", "weight": 0}])
    one, _ = image(client, loras=[{"name": "tiny-kohya", "weight": 1}])
    two, _ = image(client, loras=[{"name": "tiny-kohya", "weight": 1}, {"name": "tiny-peft", "weight": 1}])
    assert pixels(zero) == pixels(plain)
    assert len({pixels(plain), pixels(one), pixels(two)}) == 3
    assert pixels(image(client)[0]) == pixels(plain)  # switching back off leaves nothing behind
    assert pixels(image(client, loras=[{"name": "tiny-kohya", "weight": 1}])[0]) == pixels(one)


def test_prompt_tags_are_the_same_as_the_field_and_infotext_records_them(client: FlaskClient) -> None:
    by_field, _ = image(client, loras=[{"name": "tiny-kohya", "weight": 0.5}])
    by_tag, body = image(client, prompt="a red fox <lora:tiny-kohya:0.5>")
    assert pixels(by_tag) == pixels(by_field)  # the tag never reaches the text encoder
    text = infotext(by_tag)
    assert text.startswith("a red fox <lora:tiny-kohya:0.5>\n")
    assert 'Lora hashes: "tiny-kohya: ' in text
    assert body["parameters"]["loras"][0]["name"] == "tiny-kohya" and body["parameters"]["loras"][0]["weight"] == 0.5
    assert "<lora:tiny-kohya:0.5>" in infotext(by_field)  # a field LoRA is written as a tag, to paste back


def test_a_lora_of_another_family_is_a_400_naming_it(client: FlaskClient) -> None:
    found = error(client.post("/image", json={**BASE, "loras": [{"name": "tiny-sdxl", "weight": 1}]}), 400)
    assert "tiny-sdxl" in found["message"] and "SDXL" in found["message"]
    found = error(client.post("/generate/text2img", json={**BASE, "prompt": "x <lora:tiny-loha:1>"}), 400)
    assert "tiny-loha" in found["message"] and "lycoris" in found["message"]


@pytest.mark.parametrize("name", ["../loras/tiny-kohya", "/etc/passwd", "nope", "styles/../../x"])
def test_names_never_leave_the_lora_folder(client: FlaskClient, name: str) -> None:
    found = error(client.post("/image", json={**BASE, "loras": [{"name": name}]}), 404)
    assert found["details"][0]["field"] == "loras"


def test_weights_and_counts_are_bounded_by_settings(client: FlaskClient) -> None:
    assert "LORA_MAX_WEIGHT" in error(client.post("/image", json={**BASE, "loras": [
        {"name": "tiny-kohya", "weight": 5}]}), 400)["message"]
    assert "tiny-kohya" in error(client.post("/image", json={**BASE, "prompt": "<lora:tiny-kohya:x>"}), 400)["message"]


def test_preset_fast_runs_lcm_lora_four_steps_guidance_one_and_the_tiny_decoder(client: FlaskClient) -> None:
    body = {k: v for k, v in BASE.items() if k != "num_inference_steps"}
    job = client.post("/generate/text2img", json={**body, "preset": "fast"}).get_json()
    done = wait_for(lambda: (j := client.get(f"/jobs/{job['id']}").get_json())["status"] == "completed" and j)
    params = done["result"]["parameters"]
    assert (params["steps"], params["guidance_scale"], params["sampler"], params["decoder"], params["preset"]) == \
        (4, 1.0, "lcm", "tiny", "fast")
    assert [lora["name"] for lora in params["loras"]] == ["lcm-lora-sdv1-5"]
    text = infotext(client.get(done["result"]["urls"][0]).data)
    assert "Steps: 4, Sampler: LCM, CFG scale: 1.0" in text and "Decoder: tiny" in text and "Preset: fast" in text
    assert 'Lora hashes: "lcm-lora-sdv1-5: ' in text


def test_explicit_fields_win_over_the_preset(client: FlaskClient) -> None:
    _, body = image(client, preset="fast", num_inference_steps=2, guidance_scale=2.0, sampler="euler",
                    decoder="full", loras=[{"name": "lcm-lora-sdv1-5", "weight": 0.5}])
    params = body["parameters"]
    assert (params["steps"], params["guidance_scale"], params["sampler"], params["decoder"]) == (2, 2.0, "euler", "full")
    assert params["loras"][0]["weight"] == 0.5


def test_the_decoder_is_chosen_per_job(client: FlaskClient) -> None:
    full, body = image(client)
    tiny, tiny_body = image(client, decoder="tiny")
    assert body["parameters"]["decoder"] == "full" and tiny_body["parameters"]["decoder"] == "tiny"
    assert pixels(full) != pixels(tiny) and "Decoder: tiny" in infotext(tiny) and "Decoder" not in infotext(full)
    assert pixels(image(client)[0]) == pixels(full)


def test_the_tiny_decoder_missing_is_a_clear_400(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(Path(__file__).parent / "fixtures" / "tiny-sd-int8-ov", model,
                    ignore=shutil.ignore_patterns("vae_*_tiny"))
    app = start_app(make_settings(tmp_path, stable_diffusion_repo_id=str(model)))
    try:
        found = error(app.test_client().post("/image", json={**BASE, "decoder": "tiny"}), 400)
        assert "--tiny-autoencoder" in found["message"] and found["details"][0]["field"] == "decoder"
        presets = app.test_client().get("/presets").get_json()
        fast = next(p for p in presets["presets"] if p["name"] == "fast")
        assert fast["available"] is False and "lcm-lora-sdv1-5" in fast["reason"]
        found = error(app.test_client().post("/image", json={**BASE, "preset": "fast"}), 400)
        assert "LCM-LoRA" in found["message"] and "latent-consistency/lcm-lora-sdv1-5" in found["message"]
    finally:
        stop_app(app)


# -- listings ------------------------------------------------------------------------------------
def test_get_loras_lists_name_alias_layout_and_the_family_each_fits(client: FlaskClient) -> None:
    body = client.get("/loras").get_json()
    items = {item["name"]: item for item in body["loras"]}
    assert {"tiny-kohya", "tiny-peft", "tiny-sdxl", "styles/peft-in-a-folder"} <= set(items)
    assert items["tiny-kohya"]["layout"] == "kohya" and items["tiny-peft"]["layout"] == "peft"
    assert items["tiny-kohya"]["fits_model"] is True and items["tiny-sdxl"]["fits_model"] is False
    assert items["tiny-sdxl"]["family"] == "SDXL" and "tiny-sdxl" in items["tiny-sdxl"]["problem"]
    assert len(items["tiny-kohya"]["hash"]) == 12 and body["max_weight"] == 4.0
    a1111 = {item["name"]: item for item in client.get("/sdapi/v1/loras").get_json()}
    assert set(a1111["tiny-kohya"]) >= {"name", "alias", "path", "metadata", "family"}
    assert Path(a1111["tiny-kohya"]["path"]).is_file()


def test_get_presets_states_steps_guidance_sampler_and_decoder(client: FlaskClient) -> None:
    body = client.get("/presets").get_json()
    assert body["family"] == "sd"
    by_name = {p["name"]: p for p in body["presets"]}
    assert list(by_name) == ["fast", "balanced", "quality"]
    assert {k: by_name["fast"][k] for k in ("steps", "guidance_scale", "sampler", "decoder", "available")} == \
        {"steps": 4, "guidance_scale": 1.0, "sampler": "lcm", "decoder": "tiny", "available": True}
    assert "LoRA latent-consistency/lcm-lora-sdv1-5" in by_name["fast"]["needs"]
    model = client.get("/models").get_json()["models"][0]
    assert model["family"] == "sd" and [p["name"] for p in model["presets"]] == ["fast", "balanced", "quality"]
    assert model["presets"][0]["decoder"] == "tiny" and model["presets"][0]["needs"] == by_name["fast"]["needs"]


# -- the other surfaces --------------------------------------------------------------------------
def test_a1111_takes_prompt_tags_and_the_preset_extra(client: FlaskClient) -> None:
    a1111 = {"prompt": "a red fox", "seed": 11, "width": 64, "height": 64, "steps": 2}
    plain = client.post("/sdapi/v1/txt2img", json=a1111).get_json()
    tagged = client.post("/sdapi/v1/txt2img", json={**a1111, "prompt": "a red fox <lora:tiny-kohya:1>"}).get_json()
    assert plain["images"][0] != tagged["images"][0]
    info = json.loads(tagged["info"])
    assert info["extra_generation_params"]["Lora hashes"].startswith("tiny-kohya: ")
    assert 'Lora hashes: "tiny-kohya: ' in info["infotexts"][0]
    fast = client.post("/sdapi/v1/txt2img", json={"prompt": "a fox", "width": 64, "height": 64, "preset": "fast"})
    info = json.loads(fast.get_json()["info"])
    assert (info["steps"], info["cfg_scale"], info["sampler_name"]) == (4, 1.0, "LCM")
    assert info["extra_generation_params"]["Decoder"] == "tiny"
    response = client.post("/sdapi/v1/txt2img", json={**a1111, "prompt": "x <lora:tiny-sdxl:1>"})
    assert response.status_code == 400 and "tiny-sdxl" in response.get_json()["error"]["message"]


def test_a1111_img2img_blends_loras_from_the_extra_field(client: FlaskClient) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 80, 40)).save(buffer, "PNG")
    init = base64.b64encode(buffer.getvalue()).decode()
    body = {"prompt": "a fox", "seed": 3, "steps": 3, "init_images": [init], "denoising_strength": 0.8}
    off = client.post("/sdapi/v1/img2img", json=body).get_json()["images"][0]
    on = client.post("/sdapi/v1/img2img", json={**body, "loras": [{"name": "tiny-peft", "weight": 1}]}).get_json()
    assert on["images"][0] != off


def test_openai_takes_loras_preset_and_decoder_as_extra_fields(client: FlaskClient) -> None:
    base = {"prompt": "a red fox", "size": "64x64", "seed": 11, "num_inference_steps": 2}
    plain = client.post("/v1/images/generations", json=base).get_json()["data"][0]["b64_json"]
    zero = client.post("/v1/images/generations", json={**base, "loras": [{"name": "tiny-kohya", "weight": 0}]})
    one = client.post("/v1/images/generations", json={**base, "loras": [{"name": "tiny-kohya", "weight": 1}]})
    assert pixels(base64.b64decode(zero.get_json()["data"][0]["b64_json"])) == pixels(base64.b64decode(plain))
    assert one.get_json()["data"][0]["b64_json"] != plain
    bad = client.post("/v1/images/generations", json={**base, "loras": [{"name": "tiny-sdxl"}]})
    assert bad.status_code == 400 and "tiny-sdxl" in bad.get_json()["error"]["message"]
    assert bad.get_json()["error"]["param"] == "loras"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (20, 90, 140)).save(buffer, "PNG")
    edit = client.post("/v1/images/edits", data={"prompt": "a fox", "preset": "fast", "decoder": "full",
                                                 "loras": json.dumps([{"name": "tiny-peft", "weight": 1}]),
                                                 "image": (io.BytesIO(buffer.getvalue()), "in.png")},
                       content_type="multipart/form-data")
    assert edit.status_code == 200, edit.get_json()


def test_every_mode_takes_loras(client: FlaskClient) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 140, 60)).save(buffer, "PNG")
    picture = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    mask = io.BytesIO()
    Image.new("L", (64, 64), 255).save(mask, "PNG")
    inputs = {"img2img": {"init_image": picture, "strength": 0.9},
              "inpaint": {"image": picture, "mask": "data:image/png;base64," + base64.b64encode(mask.getvalue()).decode()},
              "style-transfer": {"content_image": picture, "style_image": picture, "content_strength": 0.1}}
    for mode, fields in inputs.items():
        off, _ = image(client, mode=mode, num_inference_steps=4, **fields)
        zero, _ = image(client, mode=mode, num_inference_steps=4, loras=[{"name": "tiny-peft", "weight": 0}], **fields)
        on, _ = image(client, mode=mode, num_inference_steps=4, loras=[{"name": "tiny-peft", "weight": 1}], **fields)
        assert pixels(zero) == pixels(off) != pixels(on), mode


def test_lora_switched_off_is_a_400_and_plain_images_still_work(tmp_path: Path, lora_dir: Path) -> None:
    app = start_app(make_settings(tmp_path, lora_dir=lora_dir, lora_enabled=False))
    try:
        client = app.test_client()
        found = error(client.post("/image", json={**BASE, "prompt": "x <lora:tiny-kohya:1>"}), 400)
        assert "LORA_ENABLED=false" in found["message"]
        assert client.post("/image", json=BASE).status_code == 200
        assert app.extensions["sdedge"].loader.engine().info()["lora"] is False
    finally:
        stop_app(app)


def test_attention_coverage_still_applies_attention_loras(tmp_path: Path, lora_dir: Path) -> None:
    app = start_app(make_settings(tmp_path, lora_dir=lora_dir, lora_coverage="attention"))
    try:
        client = app.test_client()
        assert app.extensions["sdedge"].loader.engine()._loras.cache.layers.coverage == "attention"
        plain, _ = image(client)
        assert pixels(image(client, loras=[{"name": "tiny-kohya", "weight": 0}])[0]) == pixels(plain)
        assert pixels(image(client, loras=[{"name": "tiny-kohya", "weight": 1}])[0]) != pixels(plain)
    finally:
        stop_app(app)
