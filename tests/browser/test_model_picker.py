"""The model picker at 390x844: family, size and install state per model; a model's defaults fill the form;
modes it cannot run are disabled with the reason; a job runs on the model picked.

A server of its own, started the README's way, with MODELS_DIR holding the tiny SDXL fixture (named so
nothing hints at its family) and an inpainting-only model (the SD fixture with a 9-channel UNet config;
it is listed, never run).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import FIXTURE_MODEL
from serverproc import ServerProcess

from .conftest import TINY_MODEL_SETTINGS, Browsing, fill_basic, generate, no_horizontal_scroll, wait_job

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def library_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("model-library")
    models = tmp / "my-models"
    models.mkdir()
    (models / "studio").symlink_to(FIXTURE_MODEL.parent / "tiny-sdxl-int8-ov", target_is_directory=True)
    inpaint = shutil.copytree(FIXTURE_MODEL, models / "fill-in")
    config = json.loads((inpaint / "unet" / "config.json").read_text())
    (inpaint / "unet" / "config.json").write_text(json.dumps({**config, "in_channels": 9}))
    proc = ServerProcess(tmp, defaults=True, MODELS_DIR=str(models), **TINY_MODEL_SETTINGS).start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def _pick(page: Any, model_id: str) -> None:
    page.locator("#model").select_option(model_id)


def test_a_person_picks_a_model_sees_its_facts_and_runs_a_job_on_it(browsing: Browsing,
                                                                     library_server: ServerProcess) -> None:
    page = browsing.open(phone=True, server=library_server)
    picker = page.get_by_label("Model")
    expect(picker).to_be_visible()
    options = [text.strip() for text in picker.locator("option").all_inner_texts()]
    assert any(o.startswith("tiny-sd-int8-ov · Stable Diffusion 1.x/2.x") and o.endswith("· installed") for o in options)
    assert any(o.startswith("studio · Stable Diffusion XL") for o in options)
    assert any(o.startswith("FLUX.1 schnell (int8) · FLUX.1 · ~17.0 GB · not installed") for o in options)
    expect(page.locator("#model-info")).to_contain_text("the server's default")

    _pick(page, "fill-in")  # an inpainting-only model: the other modes are disabled, saying why
    expect(page.locator("#tab-text2img")).to_be_disabled()
    expect(page.locator("#tab-text2img")).to_have_attribute("title", "fill-in (Stable Diffusion inpainting) cannot run text to image")
    expect(page.locator("#tab-inpaint")).to_be_enabled()
    expect(page.locator("#model-info")).to_contain_text("runs inpainting ·")

    _pick(page, "flux.1-schnell-int8-ov")  # not installed: an open server lets anyone download it
    expect(page.get_by_role("button", name="Download (~17.0 GB)")).to_be_visible()
    expect(page.locator("#negative_prompt")).to_be_disabled()
    expect(page.locator("#model-info")).to_contain_text("no negative prompt")

    _pick(page, "studio")  # SDXL: its defaults fill the form (the tiny model's configs say 64x64)
    expect(page.locator("#tab-text2img")).to_be_enabled()
    expect(page.locator("#model-info")).to_contain_text("Stable Diffusion XL")
    expect(page.locator("#guidance_scale")).to_have_value("5")
    # the speed switch follows the model picked: SDXL's fast preset needs the SDXL LCM-LoRA, not SD 1.5's
    expect(page.locator("label[for=preset-fast]")).to_have_attribute("title", re.compile("lcm-lora-sdxl"))
    page.get_by_role("tab", name="Text").click()
    fill_basic(page, "a lighthouse", steps=2)
    assert no_horizontal_scroll(page)
    browsing.shot(page, "picked")
    card, sent = generate(page)
    assert sent["model"] == "studio"
    job = wait_job(library_server, card.get_attribute("data-job-id"))
    assert job["status"] == "completed" and job["result"]["model"] == "studio"
    expect(card.locator(".job-status")).to_contain_text("Done")
    browsing.shot(page, "done")


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose hub is a local stand-in serving the tiny SD model as the catalog's LCM Dreamshaper."""
    import test_model_files as hubfake

    saved, hubfake.REPO = hubfake.REPO, "OpenVINO/LCM_Dreamshaper_v7-int8-ov"
    fake, http = hubfake._start_hub(hubfake._read_tree(FIXTURE_MODEL))
    proc = ServerProcess(tmp_path_factory.mktemp("page-download"), defaults=True, HF_ENDPOINT=fake.url,
                         **TINY_MODEL_SETTINGS).start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()
        http.shutdown()
        http.server_close()
        hubfake.REPO = saved


def test_downloading_a_model_from_the_page_ends_installed(browsing: Browsing, hub_server: ServerProcess) -> None:
    page = browsing.open(phone=True, server=hub_server)
    _pick(page, "lcm_dreamshaper_v7-int8-ov")
    option = page.locator("#model option[value='lcm_dreamshaper_v7-int8-ov']")
    expect(option).to_contain_text("not installed")
    page.get_by_role("button", name="Download (~1.1 GB)").click()
    expect(option).to_contain_text("· installed")  # the page followed the download to its end
    expect(page.locator("#model-download")).to_be_hidden()
    status, model = hub_server.request("GET", "/models/lcm_dreamshaper_v7-int8-ov")
    assert status == 200 and model["download"]["state"] == "complete" and model["family"] == "sd"
    browsing.shot(page, "downloaded")
