"""Painting the inpainting mask where it shows, with a mouse on a laptop and a finger on a phone.

The Generate bar floats at the bottom of the screen (phone) or of the form panel (laptop). A press meant
for the mask must never land on it: the page brings a picked image into view clear of the bar, and
while the mask reaches into the bar's strip the bar docks at the end of the form.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .conftest import LAPTOP, PHONE, Browsing, fill_basic, generate, in_view, input_png, posts

expect = pytest.importorskip("playwright.sync_api").expect

VIEWPORTS = {"laptop": LAPTOP, "phone": PHONE, "landscape": {"width": 844, "height": 390}}

CANVAS_CLEAR = """() => {
    const c = document.getElementById('mask-canvas'), r = c.getBoundingClientRect(), x = r.left + r.width / 2;
    return [r.top + r.height / 2, r.bottom - 1].every((y) => document.elementFromPoint(x, y) === c);
}"""
"""What a person sees of the mask can be pressed: its centre and its bottom edge are the canvas itself."""

BAR_OFF_CANVAS = """() => {
    const c = document.getElementById('mask-canvas'), bar = document.getElementById('actions');
    const r = c.getBoundingClientRect(), x = r.left + r.width / 2;
    for (let y = Math.max(0, r.top + 1); y < Math.min(innerHeight, r.bottom); y += 4) {
        const hit = document.elementFromPoint(x, y);
        if (hit && bar.contains(hit)) return false;
    }
    return true;
}"""
"""No point of the canvas, down its middle, is covered by the Generate bar."""

SETTLED = f"""() => {{
    const c = document.getElementById('mask-canvas'), top = c.getBoundingClientRect().top;
    const still = window.lastMaskTop === top;
    window.lastMaskTop = top;
    return still && ({CANVAS_CLEAR})() && !document.getElementById('actions').classList.contains('docked');
}}"""
"""The page has brought the whole mask into view and the bar floats again: the mask stood still since the
last poll (the page's scroll is smooth), its visible place can be pressed, the bar is not docked."""

PLACE_CANVAS = """([strip, fraction]) => {
    const c = document.getElementById('mask-canvas'), panel = document.querySelector('.create');
    const scroller = ['auto', 'scroll'].includes(getComputedStyle(panel).overflowY) ? panel : document.scrollingElement;
    const r = c.getBoundingClientRect();
    scroller.scrollTop += r.top - (strip - fraction * r.height);
    const now = c.getBoundingClientRect();
    return now.top < strip && now.bottom > strip;
}"""
"""Scroll the canvas so that `fraction` of it lies above the top of the bar's strip; true when it straddles the strip."""


def open_at(browsing: Browsing, viewport: str) -> Any:
    return browsing.open(VIEWPORTS[viewport], phone=viewport != "laptop")


def decode_data_url(value: str) -> Image.Image:
    assert value.startswith("data:image/png;base64,"), value[:40]
    return Image.open(io.BytesIO(base64.b64decode(value.split(",", 1)[1])))


def stroke(page: Any, start: tuple[float, float], end: tuple[float, float], *, finger: bool) -> None:
    """A straight stroke: a mouse drag, or a finger on the touch screen (real touch events, over CDP)."""
    steps = [(start[0] + (end[0] - start[0]) * i / 6, start[1] + (end[1] - start[1]) * i / 6) for i in range(7)]
    if not finger:
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=6)
        page.mouse.up()
        return
    cdp = page.context.new_cdp_session(page)
    for i, (x, y) in enumerate(steps):
        kind = "touchStart" if i == 0 else "touchMove"
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def count_generate_presses(page: Any) -> None:
    page.evaluate("""() => { window.generatePresses = 0;
        document.getElementById('generate').addEventListener('click', () => { window.generatePresses += 1; }, true); }""")


def painted_at(page: Any, fx: float, fy: float) -> bool:
    """The canvas holds paint at this fraction of its width and height."""
    return bool(page.evaluate("""([fx, fy]) => { const c = document.getElementById('mask-canvas');
        const px = c.getContext('2d').getImageData(Math.floor(c.width * fx), Math.floor(c.height * fy), 1, 1).data;
        return px[3] > 127; }""", [fx, fy]))


@pytest.mark.parametrize(("viewport", "size"), [
    ("laptop", (64, 64)), ("laptop", (96, 64)), ("phone", (64, 64)), ("phone", (64, 96)), ("landscape", (96, 64)),
], ids=["laptop-square", "laptop-wide", "phone-square", "phone-tall", "landscape-wide"])
def test_paint_a_mask_where_it_shows_and_inpaint(browsing: Browsing, tmp_path: Path, viewport: str,
                                                 size: tuple[int, int]) -> None:
    width, height = size
    page = open_at(browsing, viewport)
    sent = posts(page)
    count_generate_presses(page)
    page.get_by_role("tab", name="Inpaint").click()
    page.get_by_label("Image to edit file").set_input_files(input_png(tmp_path, "photo.png", size))
    canvas = page.locator("#mask-canvas")
    expect(canvas).to_be_visible()
    page.wait_for_function(SETTLED, polling=100)  # the page itself brings the whole mask into view, clear of the bar
    assert in_view(page, "#generate"), "with the whole mask in view, Generate still floats in reach"

    box = canvas.bounding_box()  # where a person sees it: no scrolling by the test
    assert box
    y = box["y"] + box["height"] * 0.5
    stroke(page, (box["x"] + box["width"] * 0.2, y), (box["x"] + box["width"] * 0.55, y), finger=viewport != "laptop")
    bottom = box["y"] + box["height"] - 3  # the bottom edge, where the bar used to float
    stroke(page, (box["x"] + box["width"] * 0.7, bottom), (box["x"] + box["width"] * 0.9, bottom), finger=viewport != "laptop")
    browsing.shot(page, "mask-painted", full_page=False)
    assert painted_at(page, 0.35, 0.5) and painted_at(page, 0.8, 0.99), "both strokes are on the mask"
    assert not painted_at(page, 0.95, 0.05)
    assert page.evaluate("window.generatePresses") == 0 and sent == [], "painting did not press Generate"
    expect(page.locator("#form-error")).to_be_hidden()
    expect(page.locator("#job-list .job-card")).to_have_count(0)

    fill_basic(page, "a red door", size=size, steps=3)
    card, body = generate(page, "inpaint")
    mask = decode_data_url(body["mask"]).convert("L")
    assert mask.size == size, "the mask has the image's size"
    assert {mask.getpixel((x, y)) for x in range(width) for y in range(height)} == {0, 255}, "black and white only"
    assert mask.getpixel((int(width * 0.35), height // 2)) == 255, "white where painted"
    assert mask.getpixel((int(width * 0.8), height - 1)) == 255, "white along the bottom edge too"
    assert mask.getpixel((width - 4, 4)) == 0, "black elsewhere"
    assert body["image"].startswith("data:image/png;base64,")

    browsing.wait_job(card)
    expect(card).to_have_attribute("data-status", re.compile("completed|failed"))
    if card.get_attribute("data-status") == "failed":
        pytest.fail(f"inpainting failed on the server: {card.locator('.error-box').inner_text()}")
    expect(card.locator("img.job-result")).to_be_visible()
    browsing.shot(page, "inpainted", full_page=False)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_generate_bar_never_covers_the_mask_while_scrolling(browsing: Browsing, tmp_path: Path, viewport: str) -> None:
    page = open_at(browsing, viewport)
    page.get_by_role("tab", name="Inpaint").click()
    page.get_by_label("Image to edit file").set_input_files(input_png(tmp_path, "tall.png", (64, 96)))
    page.wait_for_function(SETTLED, polling=100)
    strip = page.locator("#actions").bounding_box()
    assert strip and in_view(page, "#generate")
    for fraction in (0.9, 0.5, 0.1):
        assert page.evaluate(PLACE_CANVAS, [strip["y"], fraction]), "the mask reaches into the bar's strip"
        page.wait_for_function(BAR_OFF_CANVAS)
        hit = page.evaluate("(y) => { const c = document.getElementById('mask-canvas'), r = c.getBoundingClientRect();"
                            " return document.elementFromPoint(r.left + r.width / 2, y) === c; }", strip["y"] + 4)
        assert hit, "where the bar floated, a press lands on the mask"
        browsing.shot(page, f"mask-{int(fraction * 100)}-above-the-strip", full_page=False)
    page.evaluate(PLACE_CANVAS, [strip["y"] - 8, 1.0])  # the whole mask above the strip again
    page.wait_for_function("() => !document.getElementById('actions').classList.contains('docked')")
    assert in_view(page, "#generate"), "the bar floats again once the mask is clear of it"
    assert page.evaluate(BAR_OFF_CANVAS)
