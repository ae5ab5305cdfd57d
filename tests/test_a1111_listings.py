"""AUTOMATIC1111's listings, options and png-info, through the unmodified `webuiapi` client against a real server."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import webuiapi

from a1111help import FAST, MODEL, webui
from serverproc import ServerProcess
from test_openapi_spec import check_response

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("a1111-listings"), OPENVINO_DEVICE="CPU").start()
    proc.wait_ready()
    yield proc
    proc.stop()


def getters(api: webuiapi.WebUIApi) -> list[str]:
    """Every get_* method of webuiapi's client that takes no argument (the listings UIs fill menus from)."""
    return sorted(name for name, method in inspect.getmembers(api, inspect.ismethod) if name.startswith("get_")
                  and all(p.default is not p.empty for p in inspect.signature(method).parameters.values()))


def test_every_webuiapi_getter_answers_in_a1111s_shape(server: ServerProcess, doc: dict[str, Any]) -> None:
    api = webui(server)
    names = getters(api)
    assert {"get_latent_upscale_modes", "get_cmd_flags", "get_sd_vae", "get_embeddings", "get_memory",
            "get_hypernetworks", "get_face_restorers", "get_prompt_styles", "get_scripts"} <= set(names)
    answers = {name: getattr(api, name)() for name in names}  # each raises on a non-JSON (404) answer
    for name in ("get_latent_upscale_modes", "get_sd_vae", "get_hypernetworks", "get_face_restorers",
                 "get_prompt_styles", "get_realesrgan_models", "get_loras", "get_upscalers"):
        assert answers[name] == [], name
    assert answers["get_embeddings"] == {"loaded": {}, "skipped": {}}
    assert answers["get_memory"]["ram"]["total"] > answers["get_memory"]["ram"]["free"] > 0
    assert answers["get_cmd_flags"]["api"] is True and answers["get_scripts"] == {"txt2img": [], "img2img": []}
    for path in ("latent-upscale-modes", "cmd-flags", "sd-vae", "embeddings", "memory", "hypernetworks",
                 "face-restorers", "prompt-styles", "script-info", "extensions", "sd-modules"):
        status, body = server.request("GET", f"/sdapi/v1/{path}")
        check_response(doc, f"/sdapi/v1/{path}", "get", status, body)


def test_png_info_reads_back_the_infotext_of_a_generated_image(server: ServerProcess, doc: dict[str, Any]) -> None:
    api = webui(server)
    made = api.txt2img(prompt="a lighthouse", negative_prompt="fog", seed=11, cfg_scale=6, **FAST)
    read = api.png_info(made.image)
    assert read.info == made.info["infotexts"][0]
    parameters = read.json["parameters"]
    assert parameters["Prompt"] == "a lighthouse" and parameters["Negative prompt"] == "fog"
    assert (parameters["Seed"], parameters["Size-1"], parameters["Size-2"], parameters["Sampler"]) == (
        "11", "64", "64", "Euler a")
    check_response(doc, "/sdapi/v1/png-info", "post", 200, read.json)
    status, body = server.request("POST", "/sdapi/v1/png-info", {"image": "bm90IGFuIGltYWdl"})
    assert status == 400 and body["error"]["details"][0]["field"] == "image"


def test_models_options_and_listings(server: ServerProcess, doc: dict[str, Any]) -> None:
    api = webui(server)
    assert api.util_get_model_names() == [MODEL]
    api.util_set_model("TINY-sd")  # webuiapi picks the closest title and posts it to /options
    assert api.util_get_current_model() == MODEL
    assert {"Euler a", "Euler", "DDIM", "PLMS", "LMS", "LCM"} <= set(api.util_get_sampler_names())
    assert api.util_get_scheduler_names() == ["automatic"]
    assert api.get_upscalers() == [] and api.get_loras() == [] and api.refresh_checkpoints() is None
    for path in ("/sdapi/v1/sd-models", "/sdapi/v1/samplers", "/sdapi/v1/options", "/sdapi/v1/schedulers"):
        status, body = server.request("GET", path)
        check_response(doc, path, "get", status, body)
    status, body = server.request("POST", "/sdapi/v1/options", {"sd_model_checkpoint": "sdxl.safetensors [abc]"})
    assert status == 400 and MODEL in body["error"]["message"]
    check_response(doc, "/sdapi/v1/options", "post", status, body)
    status, body = server.request("POST", "/sdapi/v1/options", {"sd_model_checkpoint": f"{MODEL} [0f1e]", "x": 1})
    assert status == 200 and body is None


