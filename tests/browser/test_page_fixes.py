"""Page fixes from the first-run walk (issue 12): what a person sees at phone and laptop size."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from serverproc import ServerProcess

from .conftest import (
    LAPTOP, LONG, Browsing, fill_basic, generate, in_view, input_png, posts, set_range, step_at_least, wait_in_view,
)

expect = pytest.importorskip("playwright.sync_api").expect

SIZES = pytest.mark.parametrize("phone", [True, False], ids=["phone", "laptop"])


def modes(server: ServerProcess) -> dict[str, Any]:
    return {mode["id"]: mode for mode in server.request("GET", "/modes")[1]["modes"]}


def finish_one(browsing: Browsing, page: Any, prompt: str, **size: Any) -> Any:
    fill_basic(page, prompt, **size)
    card, _ = generate(page)
    browsing.wait_job(card)
    expect(card.locator("img.job-result").first).to_be_visible()
    return card


def test_reuse_settings_copies_only_the_target_modes_fields(browsing: Browsing, page: Any, server: ServerProcess,
                                                            tmp_path: Path) -> None:
    image_strength = modes(server)["img2img"]["fields"]["strength"]["default"]
    assert image_strength < 1
    card = finish_one(browsing, page, "a quiet harbour", steps=2)  # text to image: runs at strength 1.0
    card.locator(".result-thumb").first.click()
    page.get_by_role("dialog").get_by_role("button", name="Reuse settings").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a quiet harbour")

    page.get_by_role("tab", name="Image", exact=True).click()
    expect(page.locator("#strength-out")).to_have_text(f"{image_strength:g}")  # image to image's own, not 1.0
    page.get_by_label("Starting image file").set_input_files(input_png(tmp_path, "start.png", (64, 64)))
    _, body = generate(page, "img2img")
    assert body["strength"] == image_strength, "the input image is not ignored"
    assert "style_strength" not in body and "mask_blur" not in body, "only image to image's own fields are sent"

    set_range(page, "strength", 0.4)  # each mode keeps its own value
    page.get_by_role("tab", name="Inpaint").click()
    expect(page.locator("#strength-out")).to_have_text(f"{modes(server)['inpaint']['fields']['strength']['default']:g}")
    page.get_by_role("tab", name="Image", exact=True).click()
    expect(page.locator("#strength-out")).to_have_text("0.4")
    browsing.shot(page, "reused-into-img2img")


@SIZES
def test_a_size_the_server_refuses_is_shown_not_changed_and_not_sent(browsing: Browsing, phone: bool) -> None:
    page = browsing.open(phone=phone)
    sent = posts(page)
    page.get_by_label("Prompt", exact=True).fill("a kite")
    page.locator("label[for='size-custom']").click()
    width = page.get_by_label("Width", exact=True)
    width.fill("7")
    width.press("Tab")
    expect(width).to_have_value("7")  # not silently changed to 64
    error = page.locator("#width-error")
    expect(error).to_have_text("Width: must be a multiple of 8 from 32 to 1024")
    expect(error).to_be_visible()
    expect(page.locator("#size-hint")).to_have_text("Width and height: multiples of 8 from 32 to 1024.")
    field, note = width.bounding_box(), error.bounding_box()
    assert field and note and 0 <= note["y"] - (field["y"] + field["height"]) < 120, "the message sits by the field"
    browsing.shot(page, "width-7", full_page=False)

    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#form-error")).to_contain_text("Width: must be a multiple of 8 from 32 to 1024")
    expect(width).to_be_focused()
    assert sent == [], "a size the server would refuse is not submitted"
    expect(page.locator("#width-error")).to_have_count(1)

    width.fill("72")
    expect(page.locator("#width-error")).to_have_count(0)
    _, body = generate(page)
    assert (body["width"], body["height"]) == (72, 64)


def test_defaults_and_limits_come_from_the_server(browsing: Browsing, page: Any, server: ServerProcess) -> None:
    text = modes(server)["text2img"]["fields"]
    assert text["width"]["default"] == 64 and text["num_inference_steps"]["default"] == 3  # DEFAULT_SIZE, DEFAULT_STEPS
    chips = page.locator("#size-presets label:visible")
    expect(chips).to_have_text(["64 × 64", "96 × 64", "64 × 96", "Custom"])  # around DEFAULT_SIZE, no 512 × 512
    expect(page.locator("#size-64x64")).to_be_checked()
    expect(page.locator("#num_inference_steps-out")).to_have_text("3")
    expect(page.locator("#num_inference_steps")).to_have_attribute("max", str(text["num_inference_steps"]["maximum"]))
    expect(page.locator("#width")).to_have_attribute("min", "32")  # MIN_SIZE
    expect(page.get_by_role("tab")).to_have_count(len(modes(server)))
    page.get_by_label("Prompt", exact=True).fill("defaults")
    _, body = generate(page)
    assert (body["width"], body["height"], body["num_inference_steps"]) == (64, 64, 3)
    browsing.shot(page, "server-defaults", full_page=False)


def test_queued_cards_each_show_their_own_place_in_line(browsing: Browsing) -> None:
    # The page's timers are paused: no card is updated by its regular poll, only by what the page does
    # when the queue changes (before the fix, the first card kept saying "next in line" until its poll).
    page = browsing.open(clock=True)
    page.clock.pause_at(page.evaluate("Date.now()") + 1000)
    fill_basic(page, "a long queue", **LONG)
    first, _ = generate(page)
    browsing.wait_job(first, step_at_least(0))  # claimed by the worker
    second, _ = generate(page)
    third, _ = generate(page)
    expect(first).to_have_attribute("data-status", "processing")
    expect(second.locator(".job-status")).to_have_text("Queued · next in line")
    expect(third.locator(".job-status")).to_have_text("Queued · 2nd in line")
    browsing.shot(page, "three-in-line")

    page.clock.resume()
    first.get_by_role("button", name="Cancel").click()
    browsing.wait_job(second, step_at_least(0))
    expect(second).to_have_attribute("data-status", "processing")
    expect(third.locator(".job-status")).to_have_text("Queued · next in line")


def test_phone_keeps_the_brand_and_generate_in_view_and_shows_the_new_job(browsing: Browsing) -> None:
    page = browsing.open(phone=True)
    clipped = page.evaluate("""() => { const b = document.querySelector('.brand'), s = document.getElementById('status');
        return b.scrollWidth > b.clientWidth || b.getBoundingClientRect().right > s.getBoundingClientRect().left; }""")
    assert not clipped, "the brand is not cut by the badge"
    assert in_view(page, "#generate"), "Generate is on screen before any scrolling"
    page.get_by_label("Prompt", exact=True).fill("a phone job")
    set_range(page, "num_inference_steps", 2)
    page.locator("#seed").scroll_into_view_if_needed()  # the far end of the form
    assert in_view(page, "#generate"), "Generate stays on screen while the form scrolls"
    browsing.shot(page, "phone-form-scrolled", full_page=False)

    card, _ = generate(page)
    card_id = card.get_attribute("data-job-id")
    page.wait_for_function("""(id) => { const r = document.querySelector(`[data-job-id="${id}"]`).getBoundingClientRect();
        const bar = document.getElementById('actions').getBoundingClientRect();
        return r.top >= 0 && r.top < bar.top; }""", arg=card_id)  # the new card is shown, above the bar
    assert in_view(page, "#generate")
    browsing.shot(page, "phone-new-job", full_page=False)


def test_laptop_shows_generate_without_scrolling_in_every_mode(browsing: Browsing, tmp_path: Path) -> None:
    page = browsing.open(LAPTOP)
    assert in_view(page, "#generate")
    for tab in ("Image", "Inpaint", "Style"):
        page.get_by_role("tab", name=tab, exact=True).click()
        assert in_view(page, "#generate"), f"Generate below the fold in the {tab} tab"
    page.get_by_role("tab", name="Inpaint").click()
    page.get_by_label("Image to edit file").set_input_files(input_png(tmp_path, "tall.png", (200, 320)))
    expect(page.locator("#mask-canvas")).to_be_visible()
    wait_in_view(page, "#generate")  # the page scrolls the mask into view above the bar, which floats on
    assert page.evaluate("scrollY") == 0
    browsing.shot(page, "laptop-inpaint", full_page=False)


def test_clear_finished_removes_only_finished_cards(browsing: Browsing, page: Any) -> None:
    done = [finish_one(browsing, page, f"finished {i}", steps=1) for i in range(2)]
    clear = page.get_by_role("button", name="Clear finished")
    fill_basic(page, "still running", **LONG)
    running, _ = generate(page)
    browsing.wait_job(running, step_at_least(1))
    expect(clear).to_be_visible()
    clear.click()
    for card in done:
        expect(card).to_have_count(0)
    expect(running).to_be_visible()
    expect(clear).to_be_hidden()
    expect(page.locator("#gallery .gallery-item")).not_to_have_count(0)  # the history keeps their images
    browsing.shot(page, "cleared")


@SIZES
def test_a_kept_seed_is_obvious_in_every_mode(browsing: Browsing, phone: bool) -> None:
    page = browsing.open(phone=phone)
    card = finish_one(browsing, page, "a lantern", steps=1)
    seed = re.search(r"seed (\d+)", card.locator(".job-status").inner_text())
    assert seed
    card.locator(".result-thumb").first.click()
    page.get_by_role("dialog").get_by_role("button", name="Reuse settings").click()
    kept = page.locator("#seed-kept")
    for tab in ("Text", "Image", "Style"):
        page.get_by_role("tab", name=tab, exact=True).click()
        expect(kept).to_have_text(re.compile(rf"Same seed every time: {seed.group(1)}"))
        assert in_view(page, "#seed-kept"), f"the kept seed is on screen, by Generate, in the {tab} tab"
    expect(page.locator("#seed-lock")).to_have_text("Kept")
    browsing.shot(page, "seed-kept", full_page=False)
    page.get_by_role("button", name="Use random seeds").click()
    expect(kept).to_be_hidden()
    expect(page.get_by_role("spinbutton", name="Seed")).to_have_value("-1")
    expect(page.locator("#seed-lock")).to_have_text("Keep")


@pytest.mark.parametrize("upload", [
    {"name": "empty.png", "mimeType": "image/png", "buffer": b""},
    {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a picture"},
], ids=["empty", "not-an-image"])
def test_a_bad_file_shows_one_error(browsing: Browsing, page: Any, upload: dict[str, Any]) -> None:
    sent = posts(page)
    page.get_by_role("tab", name="Image", exact=True).click()
    page.get_by_label("Prompt", exact=True).fill("a bad file")
    page.get_by_label("Starting image file").set_input_files(upload)
    errors = page.locator(".field:has(.dropzone[data-input='init_image']) :is(.field-error, [role=alert]):visible")
    expect(errors).to_have_count(1)
    expect(errors).to_contain_text(upload["name"])
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#form-error")).to_be_visible()
    expect(errors).to_have_count(1)  # the form's check repeats it in the same place, not a second message
    expect(errors).to_contain_text(upload["name"])
    assert sent == []
    browsing.shot(page, "one-error", full_page=False)


def test_a_sampler_with_its_own_defaults_sets_steps_and_guidance(browsing: Browsing, page: Any) -> None:
    page.get_by_label("Sampler").select_option("lcm")
    expect(page.locator("#num_inference_steps-out")).to_have_text("4")
    expect(page.locator("#guidance_scale-out")).to_have_text("1")


@pytest.mark.parametrize("size", [(64, 64), (64, 96)], ids=["square", "tall"])
def test_phone_shows_the_finished_image_whole_without_scrolling(browsing: Browsing, size: tuple[int, int]) -> None:
    page = browsing.open(phone=True)
    card = finish_one(browsing, page, "a fox on a phone", size=size, steps=2)
    # The card grew from a status line into its image: the page shows all of it, above the Generate bar.
    page.wait_for_function("""(id) => { const card = document.querySelector(`[data-job-id="${id}"]`);
        const img = card.querySelector('img.job-result'), r = card.getBoundingClientRect();
        const bar = document.getElementById('actions').getBoundingClientRect();
        return img.complete && img.naturalWidth > 0 && r.top >= 0 && r.bottom <= bar.top; }""",
                           arg=card.get_attribute("data-job-id"))
    assert in_view(page, f"[data-job-id='{card.get_attribute('data-job-id')}'] img.job-result")
    expect(card.locator(".job-status")).to_contain_text("Done")
    assert in_view(page, f"[data-job-id='{card.get_attribute('data-job-id')}'] .job-status")
    assert in_view(page, "#generate")
    browsing.shot(page, "phone-finished", full_page=False)


def test_a_preset_that_cannot_run_says_why_without_a_tap(browsing: Browsing, server: ServerProcess) -> None:
    page = browsing.open(phone=True)
    presets = server.request("GET", "/presets")[1]["presets"]
    hint = page.locator("#preset-hint")
    expect(hint).to_contain_text("Each sets steps, guidance, sampler and decoder for this model.")
    for preset in presets:
        if not preset["available"]:
            expect(hint).to_contain_text(preset["reason"][1:])  # shown as a sentence: the first letter capitalised
            expect(page.locator(f"label[for=preset-{preset['name']}]")).to_have_class(re.compile("unavailable"))
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "a long reason (a path) wraps"
    expect(page.locator("#prompt-hint")).to_be_hidden()  # "Ctrl+Enter generates" means nothing on a phone
    browsing.shot(page, "phone-preset-hint", full_page=False)
