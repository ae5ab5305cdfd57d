"""The page's speed switch, decoder choice and LoRA picker, at phone size, against the real server."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from serverproc import ServerProcess

from .conftest import Browsing, fill_basic, generate, in_view, set_range

expect = pytest.importorskip("playwright.sync_api").expect

FIXTURE_LORAS = Path(__file__).resolve().parents[1] / "fixtures" / "loras"


@pytest.fixture
def loras(server: ServerProcess) -> Path:
    """LoRA files in the server's default LORA_DIR (data/loras in the folder it was started from)."""
    folder = server.cwd / "data" / "loras"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tiny-kohya", "tiny-peft", "tiny-sdxl"):
        shutil.copy(FIXTURE_LORAS / f"{name}.safetensors", folder / f"{name}.safetensors")
    shutil.copy(FIXTURE_LORAS / "tiny-lcm-layout.safetensors", folder / "lcm-lora-sdv1-5.safetensors")
    return folder


def test_a_person_picks_a_preset_a_lora_and_the_decoder_on_a_phone(browsing: Browsing, loras: Path) -> None:
    page: Any = browsing.open(phone=True)
    fast = page.get_by_text("Fast", exact=True)
    expect(fast).to_be_visible()
    expect(page.locator("label[for=preset-fast]")).to_have_attribute("title", re.compile("4 steps"))  # listed
    page.locator("label[for=preset-fast]").click()
    expect(page.locator("#preset-hint")).to_contain_text("4 steps, guidance 1, lcm, tiny decoder")
    expect(page.locator("#num_inference_steps-out")).to_have_text("4")
    expect(page.get_by_label("Decoder")).to_have_value("tiny")

    picker = page.get_by_label("Add a LoRA")
    expect(picker.locator("option", has_text="tiny-sdxl: made for SDXL")).to_be_disabled()
    picker.select_option("tiny-kohya")
    weight = page.get_by_role("slider", name="tiny-kohya")
    expect(weight).to_be_visible()
    weight.evaluate("el => el.scrollIntoView({block: 'center'})")
    assert in_view(page, "#lora-list input[type=range]")
    set_range(page, "lora-weight-0", 0.6)
    expect(page.locator("#lora-weight-0-out")).to_have_text("0.6")
    browsing.shot(page, "phone-fast-with-lora")

    page.get_by_label(re.compile(r"^Prompt")).fill("a fox in the snow")
    card, body = generate(page)
    assert body["preset"] == "fast" and body["decoder"] == "tiny"
    assert body["loras"] == [{"name": "tiny-kohya", "weight": 0.6}]
    job = browsing.wait_job(card)
    params = job["result"]["parameters"]
    assert (params["steps"], params["guidance_scale"], params["sampler"], params["decoder"]) == (4, 1.0, "lcm", "tiny")
    assert {lora["name"] for lora in params["loras"]} == {"tiny-kohya", "lcm-lora-sdv1-5"}

    set_range(page, "num_inference_steps", 3)  # a hand-made change leaves the preset
    expect(page.locator("#preset-fast")).not_to_be_checked()
    expect(page.locator("#preset-hint")).to_have_text("Custom settings.")
    page.get_by_role("button", name="Remove LoRA tiny-kohya").click()
    expect(page.locator("#lora-list li")).to_have_count(0)
    fill_basic(page, "a fox", steps=2)
    _, body = generate(page)
    assert "preset" not in body and "loras" not in body and body["num_inference_steps"] == 2
