"""The AUTOMATIC1111 API under /sdapi/v1, driven by the unmodified `webuiapi` client against a real server."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import webuiapi
from PIL import Image

from conftest import wait_for
from a1111help import FAST, MODEL, webui
from serverproc import ServerProcess
from test_openapi_spec import check_response

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    loras = str(Path(__file__).parent / "fixtures" / "loras")  # read only
    proc = ServerProcess(tmp_path_factory.mktemp("a1111"), OPENVINO_DEVICE="CPU", MAX_STEPS="1000",
                         LORA_DIR=loras).start()
    proc.wait_ready()
    yield proc
    proc.stop()


def png_b64(image: Image.Image) -> str:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def square_mask() -> Image.Image:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    return mask


def test_txt2img_returns_base64_pngs_seeds_and_info(server: ServerProcess, doc: dict[str, Any]) -> None:
    result = webui(server).txt2img(prompt="a lighthouse", seed=5, cfg_scale=7, batch_size=2, **FAST)
    assert [image.size for image in result.images] == [(64, 64), (64, 64)]
    assert result.info["all_seeds"] == [5, 6] and result.info["seed"] == 5
    assert result.info["sampler_name"] == "Euler a" and result.info["extra_generation_params"] == {}
    assert result.parameters["prompt"] == "a lighthouse" and result.parameters["enable_hr"] is False
    assert "Seed: 6" in result.images[1].info["parameters"] == result.info["infotexts"][1]
    check_response(doc, "/sdapi/v1/txt2img", "post", 200, result.json)
    again = webui(server).txt2img(prompt="a lighthouse", seed=6, cfg_scale=7, **FAST)
    assert np.array_equal(np.asarray(again.image), np.asarray(result.images[1]))


def test_unknown_sampler_falls_back_and_info_says_so(server: ServerProcess) -> None:
    result = webui(server).txt2img(prompt="a fox", sampler_name="DPM++ 2M", **FAST)
    assert result.info["sampler_name"] == "Euler a"
    assert "DPM++ 2M" in result.info["extra_generation_params"]["Sampler fallback"]
    plms = webui(server).txt2img(prompt="a fox", sampler_name="PLMS", **FAST)
    assert plms.info["sampler_name"] == "PLMS" and "Sampler: PLMS" in plms.info["infotexts"][0]


def test_img2img_with_mask_repaints_only_the_mask(server: ServerProcess, doc: dict[str, Any]) -> None:
    source = Image.new("RGB", (64, 64), (200, 40, 40))
    api = webui(server)
    result = api.img2img(images=[source], mask_image=square_mask(), mask_blur=0, denoising_strength=1.0,
                         prompt="a window", seed=3, **FAST)
    check_response(doc, "/sdapi/v1/img2img", "post", 200, result.json)
    pixels = np.asarray(result.image.convert("RGB")).astype(int)
    assert result.image.size == (64, 64) and result.info["is_using_inpainting_conditioning"] is True
    assert np.abs(pixels[:8, :8] - (200, 40, 40)).max() <= 2, "outside the mask must stay as it was"
    assert np.abs(pixels[24:40, 24:40] - (200, 40, 40)).max() > 10, "inside the mask must change"
    assert result.parameters["init_images"] is None and result.parameters["mask"] is None
    inverted = api.img2img(images=[source], mask_image=square_mask(), mask_blur=0, inpainting_mask_invert=1,
                           denoising_strength=1.0, prompt="a window", seed=3, **FAST)
    inner = np.asarray(inverted.image.convert("RGB")).astype(int)[24:40, 24:40]
    assert np.abs(inner - (200, 40, 40)).max() <= 2, "inverted: the masked square is kept"


def test_img2img_without_mask_accepts_data_urls_and_raw_base64(server: ServerProcess) -> None:
    source = Image.new("RGB", (64, 64), (10, 120, 200))
    for init in (png_b64(source), "data:image/png;base64," + png_b64(source)):
        status, body = server.request("POST", "/sdapi/v1/img2img", {
            "init_images": [init], "prompt": "the sea", "denoising_strength": 0.5, "include_init_images": True,
            "inpainting_fill": 1, **FAST})
        assert status == 200, body
        assert Image.open(io.BytesIO(base64.b64decode(body["images"][0]))).size == (64, 64)
        assert body["parameters"]["init_images"] == [init]
    status, body = server.request("POST", "/sdapi/v1/img2img", {"init_images": [], "prompt": "x"})
    assert status == 400 and "init_images" in body["error"]["message"]


def test_progress_shows_preview_and_interrupt_stops_the_job(server: ServerProcess, doc: dict[str, Any]) -> None:
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(
        result=webui(server).txt2img(prompt="a slow one", width=64, height=64, steps=1000)))
    runner.start()
    api = webui(server)
    progress = wait_for(lambda: (p := api.get_progress())["progress"] > 0 and p["current_image"] and p)
    check_response(doc, "/sdapi/v1/progress", "get", 200, progress)
    assert progress["state"]["sampling_steps"] >= 1000 and progress["state"]["job_count"] >= 1
    assert Image.open(io.BytesIO(base64.b64decode(progress["current_image"]))).format == "PNG"
    status, light = server.request("GET", "/sdapi/v1/progress?skip_current_image=true")
    assert status == 200 and light["current_image"] is None
    assert api.interrupt() == {}
    runner.join(timeout=60)
    result = outcome["result"]  # the partial image: the last step's latent, decoded
    assert result.info["interrupted"] is True and result.image.size == (64, 64) and len(result.images) == 1
    assert 1 <= result.info["steps"] and "interrupted at step" in result.info["error"]["message"]
    assert wait_for(lambda: api.get_progress()["state"]["job_count"] == 0)
    status, job = server.request("GET", f"/jobs/{result.info['job_id']}")
    assert job["status"] == "canceled"


def test_batch_over_the_limit_is_a_clear_400(server: ServerProcess, doc: dict[str, Any]) -> None:
    status, body = server.request("POST", "/sdapi/v1/txt2img", {"prompt": "x", "batch_size": 3, "n_iter": 2, **FAST})
    assert status == 400 and "MAX_IMAGES=4" in body["error"]["message"]
    assert body["error"]["details"][0]["field"] == "batch_size"
    check_response(doc, "/sdapi/v1/txt2img", "post", 400, body)


def test_send_images_false_and_skip_when_idle(server: ServerProcess) -> None:
    status, body = server.request("POST", "/sdapi/v1/txt2img", {"prompt": "x", "send_images": False, **FAST})
    assert status == 200 and body["images"] == []
    assert webui(server).skip() == {}


def test_webuiapi_lists_loras_and_prompt_tags_apply_them(server: ServerProcess) -> None:
    api = webui(server)
    listed = {item["name"]: item for item in api.get_loras()}
    assert {"tiny-kohya", "tiny-peft", "tiny-sdxl"} <= set(listed) and listed["tiny-sdxl"]["family"] == "SDXL"
    plain = api.txt2img(prompt="a lighthouse", seed=9, **FAST)
    zero = api.txt2img(prompt="a lighthouse <lora:tiny-kohya:0>", seed=9, **FAST)
    both = api.txt2img(prompt="a lighthouse <lora:tiny-kohya:1> <lora:tiny-peft:0.5>", seed=9, **FAST)
    assert np.array_equal(np.asarray(zero.image), np.asarray(plain.image))
    assert not np.array_equal(np.asarray(both.image), np.asarray(plain.image))
    hashes = both.info["extra_generation_params"]["Lora hashes"]
    assert hashes.startswith("tiny-kohya: ") and "tiny-peft: " in hashes
    assert "<lora:tiny-kohya:1>" in both.image.info["parameters"]
