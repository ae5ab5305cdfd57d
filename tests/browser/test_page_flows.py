"""The web page in headless Chromium: generate, watch, cancel, image inputs, history, phone layout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from serverproc import ServerProcess

from .conftest import (
    LONG, PHONE, Browsing, fill_basic, generate, input_png, no_horizontal_scroll, posts, set_range, step_at_least,
    wait_finished,
)

expect = pytest.importorskip("playwright.sync_api").expect

STEPPED = re.compile(r"Step [1-9]\d* of 30")


def test_text_to_image_shows_the_generated_image(browsing: Browsing, page: Any, server: ServerProcess) -> None:
    paths = server.request("GET", "/health")[1]["paths"]
    assert paths["generated_images_dir"].startswith(str(server.cwd)), "a default-path server: ./generated in its folder"
    fill_basic(page, "a red fox in the snow")
    browsing.shot(page, "filled")
    card, _ = generate(page)
    result = card.locator("img.job-result")
    browsing.wait_job(card)
    expect(result).to_be_visible()
    expect(result).to_have_attribute("src", re.compile(r"^/generated/job-[0-9a-f]+-0\.png$"))
    assert page.evaluate("img => img.complete && img.naturalWidth === 64", result.element_handle())
    expect(card.locator(".job-status")).to_contain_text("Done")
    expect(page.locator("#gallery .gallery-item").first.locator("img")).to_have_attribute("src", result.get_attribute("src"))
    browsing.shot(page, "done")


def test_progress_and_step_preview_appear(browsing: Browsing, page: Any) -> None:
    fill_basic(page, "a lighthouse at dawn", **LONG)
    card, _ = generate(page)
    browsing.wait_job(card, lambda job: step_at_least(1)(job) and job["preview_url"])
    expect(card.locator(".job-status")).to_contain_text(STEPPED)
    expect(card.locator(".job-status")).to_contain_text("left")  # the ETA
    expect(card.locator("img.job-preview")).to_be_visible()
    expect(card.locator("img.job-preview")).to_have_attribute("src", re.compile(r"-preview\.png\?v=\d+$"))
    assert float(card.locator("progress").get_attribute("value") or 0) > 0
    browsing.shot(page, "processing")
    first_src = card.locator("img.job-preview").get_attribute("src") or ""
    browsing.wait_job(card, lambda job: job["preview_url"] not in (None, first_src))  # the server has a newer one
    expect(card.locator("img.job-preview")).not_to_have_attribute("src", first_src)  # it updates
    browsing.shot(page, "preview-updated")
    # over Server-Sent Events, asking for image links (never their base64)
    assert any(u.endswith("/events?images=urls") for u in browsing.recorders[-1].urls), "progress came over SSE"


def test_progress_falls_back_to_polling_without_event_source(browsing: Browsing) -> None:
    page = browsing.open(init_script="delete window.EventSource")
    fill_basic(page, "polled", **LONG)
    card, _ = generate(page)
    browsing.wait_job(card, lambda job: step_at_least(1)(job) and job["preview_url"])
    expect(card.locator(".job-status")).to_contain_text(STEPPED)
    expect(card.locator("img.job-preview")).to_be_visible()
    urls = browsing.recorders[-1].urls
    assert not any("/events" in u for u in urls)
    assert any(re.search(r"/jobs/job-[0-9a-f]+\?images=urls$", u) for u in urls), "progress came from light polling"
    card.get_by_role("button", name="Cancel").click()
    browsing.wait_job(card)  # the worker stops at its next step, however slow the machine is
    expect(card).to_have_attribute("data-status", "canceled")


def test_cancel_stops_a_running_job_and_a_queued_one(browsing: Browsing, page: Any, server: ServerProcess) -> None:
    fill_basic(page, "a long job", **LONG)
    running, _ = generate(page)
    browsing.wait_job(running, step_at_least(1))
    expect(running.locator(".job-status")).to_contain_text(STEPPED)
    queued, _ = generate(page)
    expect(queued).to_have_attribute("data-status", "queued")
    expect(queued.locator(".job-status")).to_contain_text("Queued · next in line")
    browsing.shot(page, "running-and-queued")

    queued.get_by_role("button", name="Cancel").click()
    expect(queued).to_have_attribute("data-status", "canceled")

    running_id = running.get_attribute("data-job-id")
    running.get_by_role("button", name="Cancel").click()
    card = running
    browsing.wait_job(card)
    expect(card).to_have_attribute("data-status", "canceled")
    expect(card.locator(".job-status")).to_contain_text("Canceled at step")
    expect(card.get_by_role("button", name="Cancel")).to_be_hidden()
    browsing.shot(page, "canceled")
    _, job = server.request("GET", f"/jobs/{running_id}")
    assert job["status"] == "canceled" and job["progressDetail"]["step"] < 30


def test_image_to_image_and_style_transfer(browsing: Browsing, page: Any, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Image", exact=True).click()
    page.get_by_label("Starting image file").set_input_files(input_png(tmp_path, "start.png", (64, 64)))
    expect(page.locator("#size-input")).to_be_checked()  # a picked image selects its own shape
    expect(page.locator("#size-hint")).to_contain_text("Output 64 × 64")  # the server's DEFAULT_SIZE=64, as it would choose
    fill_basic(page, "a watercolor harbour")
    set_range(page, "strength", 0.5)
    card, body = generate(page, "img2img")
    assert body["strength"] == 0.5
    browsing.wait_job(card)
    expect(card.locator("img.job-result")).to_be_visible()
    browsing.shot(page, "img2img")

    page.get_by_role("tab", name="Style").click()
    page.get_by_label("Content image file").set_input_files(input_png(tmp_path, "content.png", (64, 64)))
    page.get_by_label("Style image file").set_input_files(input_png(tmp_path, "style.png", (64, 64), "#8a1c7c"))
    fill_basic(page, "")
    card, body = generate(page, "style-transfer")
    assert body["content_image"].startswith("data:image/png") and body["style_image"].startswith("data:image/png")
    browsing.wait_job(card)
    expect(card).to_have_attribute("data-status", re.compile("completed|failed"))
    assert card.get_attribute("data-status") == "completed", card.locator(".error-box").inner_text()
    expect(card.locator(".job-mode")).to_have_text("Style transfer")
    browsing.shot(page, "style-transfer")


def test_history_survives_reload_and_offers_its_actions(browsing: Browsing, page: Any) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    fill_basic(page, "a teapot on a shelf ☕")
    card, _ = generate(page)
    browsing.wait_job(card)
    expect(card.locator("img.job-result")).to_be_visible()
    job_id = card.get_attribute("data-job-id")

    page.reload()
    item = page.locator(f"#gallery [data-job-id='{job_id}']")
    expect(item.locator("img")).to_be_visible()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a teapot on a shelf ☕")  # settings remembered
    browsing.shot(page, "after-reload")

    item.get_by_role("button").click()
    viewer = page.get_by_role("dialog")
    expect(viewer).to_be_visible()
    expect(viewer.locator("#viewer-image")).to_have_attribute("src", f"/generated/{job_id}-0.png")
    expect(viewer.locator("#viewer-meta")).to_contain_text("a teapot on a shelf ☕")
    expect(viewer.get_by_role("link", name="Download")).to_have_attribute("href", f"/generated/{job_id}-0.png")
    browsing.shot(page, "viewer")
    viewer.get_by_role("button", name="Copy parameters").click()
    expect(viewer.locator("#viewer-message")).to_have_text("Parameters copied.")
    infotext = page.evaluate("navigator.clipboard.readText()")  # the PNG's own A1111 `parameters` chunk
    assert infotext.startswith("a teapot on a shelf ☕\n") and "Steps: 3, Sampler: Euler a" in infotext, infotext
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(item.get_by_role("button")).to_be_focused()  # focus returns to the thumbnail
    item.get_by_role("button").press("Enter")
    expect(viewer).to_be_visible()

    viewer.get_by_role("button", name="Use as init image").click()
    expect(viewer).to_be_hidden()
    expect(page.get_by_role("tab", name="Image", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.locator(".dropzone[data-input='init_image'] .drop-meta")).to_contain_text("64 × 64")
    browsing.shot(page, "init-image")

    item.get_by_role("button").click()
    delete = viewer.get_by_role("button", name="Delete")
    delete.click()
    viewer.get_by_role("button", name="Really delete?").click()
    expect(item).to_have_count(0)
    page.reload()
    expect(page.locator("#gallery")).to_be_attached()
    expect(page.locator(f"#gallery [data-job-id='{job_id}']")).to_have_count(0)


def test_several_images_and_reuse_settings(browsing: Browsing, page: Any) -> None:
    fill_basic(page, "a paper boat", size=(72, 64), steps=2)
    page.get_by_label("Images").select_option("2")
    card, _ = generate(page)
    browsing.wait_job(card)
    expect(card.locator("img.job-result")).to_have_count(2)
    seed = re.search(r"seed (\d+)", card.locator(".job-status").inner_text())
    assert seed
    page.get_by_label("Prompt", exact=True).fill("something else")
    card.locator(".result-thumb").first.click()
    viewer = page.get_by_role("dialog")
    expect(viewer.locator("#viewer-count")).to_have_text("1 / 2")
    viewer.get_by_role("button", name="Next").click()
    expect(viewer.locator("#viewer-image")).to_have_attribute("src", re.compile(r"-1\.png$"))
    expect(viewer.locator("#viewer-meta")).to_contain_text(str(int(seed.group(1)) + 1))  # image i uses seed + i
    browsing.shot(page, "second-image")
    viewer.get_by_role("button", name="Reuse settings").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a paper boat")
    expect(page.get_by_role("spinbutton", name="Seed")).to_have_value(str(int(seed.group(1)) + 1))  # the viewed image's
    expect(page.locator("#seed-lock")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_label("Width")).to_have_value("72")


def test_keyboard_tabs_and_clear_errors(browsing: Browsing, page: Any) -> None:
    tab = page.get_by_role("tab", name="Text")
    tab.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Image", exact=True)).to_be_focused()
    expect(page.get_by_role("tab", name="Image", exact=True)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Style")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Home")
    page.get_by_label("Prompt", exact=True).fill("")
    page.get_by_label("Prompt", exact=True).press("Control+Enter")
    alert = page.locator("#form-error")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Prompt: describe what to draw")
    expect(page.get_by_label("Prompt", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#prompt-error")).to_have_text("Prompt: describe what to draw")  # beside the field too

    sent = posts(page)
    page.get_by_label("Prompt", exact=True).fill("x" * 2001)  # over the server's MAX_PROMPT_LENGTH (from /modes)
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(alert.get_by_role("listitem")).to_have_text(["Prompt: at most 2000 characters on this server (now 2001)"])
    assert sent == [], "a prompt the server would refuse is not sent"

    # A limit the page cannot know (the server restarted with a lower one): the server's own 400 is shown.
    def older_limits(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        for mode in body["modes"]:
            mode["fields"]["prompt"]["maxLength"] = 10_000
        route.fulfill(response=response, json=body)

    page.route("**/modes", older_limits)
    page.reload()
    page.wait_for_function("document.getElementById('generate-form').dataset.ready === 'true'")
    browsing.allow_console(r"status of 400")
    page.get_by_label("Prompt", exact=True).fill("x" * 2001)
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(alert).to_contain_text("Please check the form.")
    expect(alert.get_by_role("listitem")).to_have_text(["Prompt: longer than MAX_PROMPT_LENGTH=2000 characters"])
    expect(page.get_by_label("Prompt", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Prompt", exact=True)).to_be_focused()  # focus goes to the field to fix
    browsing.shot(page, "server-400")

    page.route("**/generate/text2img", lambda route: route.fulfill(
        status=429, headers={"Retry-After": "7"}, content_type="application/json",
        body='{"error": {"code": "queue_full", "message": "the queue is full (100 jobs waiting); retry later",'
             ' "details": {"queued": 100, "max_queue_size": 100}}}'))
    browsing.allow_console(r"status of 429")
    page.get_by_label("Prompt", exact=True).fill("a cat")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(alert).to_contain_text("The queue is full")
    expect(alert).to_contain_text("Try again in about 7 s")
    expect(alert).to_contain_text("max queue size: 100")
    browsing.shot(page, "queue-full")


def test_every_control_has_a_label(browsing: Browsing, page: Any) -> None:
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                      && !el.getAttribute('aria-labelledby') && !el.textContent.trim())
        .map(el => el.outerHTML.slice(0, 80))""")
    assert unlabeled == []


def test_phone_viewport_has_no_horizontal_scroll(browsing: Browsing, tmp_path: Path) -> None:
    page = browsing.open(PHONE, phone=True)
    assert no_horizontal_scroll(page)
    browsing.shot(page, "phone-text")
    for tab in ("Image", "Inpaint", "Style"):
        page.get_by_role("tab", name=tab, exact=True).click()
        assert no_horizontal_scroll(page), f"horizontal scroll in the {tab} tab"
    page.get_by_role("tab", name="Inpaint").click()
    page.get_by_label("Image to edit file").set_input_files(input_png(tmp_path, "wide.png", (320, 200)))
    expect(page.locator("#mask-canvas")).to_be_visible()
    expect(page.get_by_role("button", name="Camera: Image to edit")).to_be_visible()  # a phone gets the camera
    canvas = page.locator("#mask-canvas").bounding_box()
    assert canvas
    page.touchscreen.tap(canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2)
    assert no_horizontal_scroll(page)
    browsing.shot(page, "phone-inpaint")

    page.get_by_role("tab", name="Text").click()
    fill_basic(page, "a very long prompt " * 12)
    card, _ = generate(page)
    browsing.wait_job(card)
    expect(card.locator("img.job-result")).to_be_visible()
    assert no_horizontal_scroll(page)
    browsing.shot(page, "phone-result")
    card.locator(".result-thumb").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert no_horizontal_scroll(page)
    browsing.shot(page, "phone-viewer", full_page=False)


def test_requests_stay_on_the_server_origin(browsing: Browsing, server: ServerProcess) -> None:
    page = browsing.open()
    expect(page.locator("#sampler option")).not_to_have_count(0)
    urls = browsing.recorders[-1].urls
    assert any(u.endswith("/static/app.js") for u in urls) and any("/health" in u for u in urls)
    assert all(u.startswith((server.base + "/", "data:", "blob:")) for u in urls), urls
    set_range(page, "guidance_scale", 1)  # the same page keeps working offline: no fonts, icons or CDNs
    browsing.shot(page, "laptop-idle")


def health_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "ok", "ready": True, "reason": None, "used_mocks": False,
        "model": {"id": "OpenVINO/stable-diffusion-v1-5-int8-ov", "path": None},
        "device": {"requested": "GPU", "actual": "CPU"},
        "loader": {"state": "ready", "download": None, "compiled_shapes": []},
    }
    body.update(changes)
    return body


def test_status_badge_shows_loading_progress_failure_and_mock_mode(browsing: Browsing, page: Any) -> None:
    badge, text = page.locator("#status"), page.locator("#status-text")
    downloading = health_body(status="downloading", ready=False, reason="downloading OpenVINO/stable-diffusion-v1-5-int8-ov",
                              loader={"state": "downloading", "compiled_shapes": [],
                                      "download": {"downloaded_bytes": 450_000_000, "total_bytes": 1_000_000_000}})
    page.route("**/health", lambda route: route.fulfill(status=503, json=downloading))
    browsing.allow_console(r"status of 503")
    page.reload()
    expect(badge).to_have_attribute("data-tone", "busy")
    expect(text).to_have_text("Downloading the model · 45% (450 MB of 1.0 GB)")
    expect(badge).to_have_attribute("title", re.compile("^Downloading OpenVINO/stable-diffusion-v1-5-int8-ov"))
    expect(page.locator("#generate-note")).to_contain_text("still loading")
    expect(page.locator("#generate-note")).to_contain_text("wait in the queue and start when it is ready")
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled()  # jobs may queue meanwhile
    browsing.shot(page, "downloading", full_page=False)

    failed = health_body(status="failed", ready=False, reason="loading the model failed: out of memory",
                         loader={"state": "failed", "download": None, "compiled_shapes": []})
    page.unroute("**/health")
    page.route("**/health", lambda route: route.fulfill(status=503, json=failed))
    expect(badge).to_have_attribute("data-tone", "bad")
    expect(text).to_have_text("Model failed: loading the model failed: out of memory")
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_disabled()  # nothing piles up behind it
    expect(page.locator("#generate-note")).to_contain_text("out of memory")

    page.unroute("**/health")
    page.route("**/health", lambda route: route.fulfill(status=200, json=health_body(used_mocks=True)))
    expect(text).to_have_text("Ready · CPU (asked for GPU) · stable-diffusion-v1-5-int8-ov")
    expect(page.locator("#mock-banner")).to_be_visible()
    expect(page.locator("#generate-note")).to_be_hidden()
    expect(page.get_by_role("button", name="Generate", exact=True)).to_be_enabled()
    browsing.shot(page, "mock-mode", full_page=False)


def test_history_pages_with_load_more(browsing: Browsing, server: ServerProcess) -> None:
    ids = [server.request("POST", "/generate/text2img", {"prompt": f"page {i}", "width": 64, "height": 64,
                                                          "num_inference_steps": 1})[1]["id"] for i in range(13)]
    wait_finished(server, ids)
    page = browsing.open()
    items = page.locator("#gallery .gallery-item")
    expect(items).to_have_count(12)
    expect(items.first).to_have_attribute("data-job-id", ids[-1])
    more = page.get_by_role("button", name="Load more")
    more.click()
    expect(page.locator(f"#gallery [data-job-id='{ids[0]}']")).to_be_attached()
    assert items.count() > 13
    expect(page.locator(f"#gallery [data-job-id='{ids[0]}'] button")).to_be_focused()  # focus moves to the new page
    browsing.shot(page, "paged")
