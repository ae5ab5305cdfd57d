"""Seed 003's frontend in a real browser, served from another origin, against sdedge with CORS_ORIGINS.

The page below is the seed's frontend logic as its README describes it: hash prompt + nonce into a
transaction key (SHA-256 in the browser), `POST /api/request` with JSON (so Chromium preflights it), poll
`GET /api/status/{key}` every 1.5 s, show `steps` as they arrive and `final` when `status` is `done`.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser.conftest import ARTIFACTS, UI_MS
from serverproc import ServerProcess, free_port

FRONTEND = """<!doctype html><html><body>
<input id="prompt" value="a red fox in the snow"><button id="generate">Generate</button>
<p id="status">idle</p><div id="steps"></div><div id="final"></div>
<script>
const backend = new URLSearchParams(location.search).get("backend");
async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, "0")).join("");
}
document.getElementById("generate").onclick = async () => {
  const prompt = document.getElementById("prompt").value;
  const key = await sha256(prompt + Math.random());
  const status = document.getElementById("status");
  try {
    const sent = await fetch(`${backend}/api/request`, {method: "POST", headers: {"Content-Type": "application/json"},
                                                        body: JSON.stringify({prompt, transaction_key: key})});
    status.textContent = (await sent.json()).status;
    while (true) {
      const data = await (await fetch(`${backend}/api/status/${key}`)).json();
      status.textContent = data.status;
      const steps = document.getElementById("steps");
      data.steps.slice(steps.children.length).forEach(src => {
        const img = document.createElement("img"); img.src = src; img.className = "step"; steps.append(img); });
      if (data.final) document.getElementById("final").innerHTML = `<img id="final-image" src="${data.final}">`;
      if (data.status === "done" || data.status === "error") break;
      await new Promise(resolve => setTimeout(resolve, 1500));
    }
  } catch (error) { status.textContent = "failed: " + error; }
};
</script></body></html>"""


@pytest.fixture(scope="module")
def frontend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page on its own origin (another port), as the seed's Worker serves it."""
    folder = tmp_path_factory.mktemp("frontend")
    (folder / "index.html").write_text(FRONTEND)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def backend(frontend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(Path(tmp_path_factory.mktemp("backend")), CORS_ORIGINS=frontend, DEFAULT_STEPS="10").start()
    proc.wait_ready()
    yield proc
    proc.stop()


def test_the_seed_frontend_on_another_origin_polls_until_done_with_steps(browser: Any, frontend: str,
                                                                          backend: ServerProcess) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{frontend}/index.html?backend={backend.base}")
    page.click("#generate")
    expect(page.locator("#status")).to_have_text("done", timeout=UI_MS * 4)
    expect(page.locator("#final-image")).to_be_visible()
    assert page.locator("img.step").count() == 5  # 10 steps: the seed's five captures, every 2 steps
    assert page.evaluate("document.getElementById('final-image').naturalWidth") == 64
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "seed003-cross-origin-frontend.png"), full_page=True)
    context.close()
