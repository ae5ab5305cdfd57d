"""While the model is not loaded, the page says why nothing will run, at Generate and in full on a phone.

A second server, started the README's way but with a model folder that does not exist (and no
download allowed), is the missing model a new user meets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import wait_for
from serverproc import ServerProcess

from .conftest import Browsing, in_view

expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture(scope="module")
def missing_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("missing-model")
    proc = ServerProcess(tmp, defaults=True, STABLE_DIFFUSION_REPO_ID=str(tmp / "no-such-model")).start()
    try:
        wait_for(lambda: _loader_state(proc) == "missing", timeout=120, interval=0.1)  # a start-up, not a job
        yield proc
    finally:
        proc.stop()


def _loader_state(proc: ServerProcess) -> str | None:
    assert proc.proc and proc.proc.poll() is None, proc.log()
    try:
        return str(proc.request("GET", "/health")[1]["loader"]["state"])
    except OSError:
        return None


@pytest.mark.parametrize("phone", [True, False], ids=["phone", "laptop"])
def test_a_missing_model_turns_generate_off_and_says_why(browsing: Browsing, missing_model: ServerProcess,
                                                         phone: bool) -> None:
    reason = missing_model.request("GET", "/health")[1]["reason"]
    assert "STABLE_DIFFUSION_REPO_ID" in reason
    browsing.allow_console(r"status of 503")  # /health answers 503 while the model is not loaded
    page = browsing.open(phone=phone, server=missing_model, tone="bad")

    generate = page.get_by_role("button", name="Generate", exact=True)
    note = page.locator("#generate-note")
    expect(generate).to_be_disabled()
    expect(note).to_contain_text(reason)
    expect(note).to_contain_text("Nothing can run until the server can load a model, so Generate is off.")
    assert in_view(page, "#generate") and in_view(page, "#generate-note"), "the reason is at the button, on screen"
    page.get_by_label("Prompt", exact=True).fill("a job that could never run")
    generate.click(force=True)  # a disabled button sends nothing
    assert missing_model.request("GET", "/jobs")[1]["jobs"] == [], "no job piles up behind the missing model"
    browsing.shot(page, "missing-model", full_page=False)

    clipped = page.evaluate("""() => { const b = document.querySelector('.brand'), s = document.getElementById('status');
        return b.scrollWidth > b.clientWidth || b.getBoundingClientRect().right > s.getBoundingClientRect().left; }""")
    assert not clipped, "a long reason in the badge does not cut the brand"
    page.locator("#status").click()  # a tap on the badge: the whole reason, wrapped, on screen
    details = page.locator("#status-reason")
    expect(details).to_be_visible()
    expect(details).to_have_text(reason[0].upper() + reason[1:])
    box = details.bounding_box()
    viewport = page.viewport_size
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], "the reason fits the screen's width"
    assert page.evaluate("el => el.scrollWidth <= el.clientWidth", details.element_handle()), "nothing cut off"
    expect(page.locator("#status")).to_have_attribute("aria-expanded", "true")
    browsing.shot(page, "missing-model-details", full_page=False)
