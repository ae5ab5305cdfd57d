"""Browser tests: Playwright driving Debian's Chromium against a real `sdedge serve` on the tiny model.

One server and one browser serve the whole run. The server starts the way a user starts it: no path
setting at all, from an empty working folder (`ServerProcess(defaults=True)`), only tuned to the tiny
model's sizes. Every test gets fresh browser contexts whose requests and console messages are recorded
and checked when the test ends: nothing may leave the server's origin and nothing may be logged as an
error. Screenshots go to test-artifacts/browser/.

Waiting: nothing waits a fixed time for generation work. `wait_job` follows a job on the server and
fails only when the server stops making progress (the allowance grows with the slowest step seen), so
a loaded machine is slower but not red. Page-side expectations then wait `UI_MS`, which covers the
page's own reaction (a DOM update, or its next poll: at most every 2 s).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from serverproc import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
# Sizes that fit the tiny model (it draws noise at any size; small ones are fast). No path settings.
TINY_MODEL_SETTINGS = {"DEFAULT_SIZE": "64", "MIN_SIZE": "32", "DEFAULT_STEPS": "3"}

LONG = {"size": (512, 512), "steps": 30}  # seconds per job on the tiny model: long enough to watch and cancel
PAGE_POLL_MS = 2000  # the page polls a queued job this often (static/js/jobs.js)
UI_MS = 5 * PAGE_POLL_MS + 5000
"""A page-side expectation: the page reacting to a click, or to what its next poll brings."""
STEP_ALLOWANCE = 10
"""A job stalls when nothing changes on the server for this many times the slowest step seen so far..."""
STALL_S = 90.0
"""...and at least this long (a new shape compiles before its first step; the last one is decoded and saved)."""

# Data and blob URLs are the page's own in-memory images (picked files, the mask), not network requests.
LOCAL_SCHEMES = ("data:", "blob:")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` to run the browser tests")
    return CHROMIUM


@pytest.fixture(scope="session")
def server(chromium_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("browser-server"), defaults=True, **TINY_MODEL_SETTINGS).start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=UI_MS)
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@dataclass
class Recorder:
    """Every request URL and every console error or page error of one browser context."""

    base: str
    urls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def on_request(self, request: Any) -> None:
        self.urls.append(request.url)

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "") if message.location else ""
        text = f"{message.text} [{where}]"
        if not any(pattern.search(text) for pattern in self.allowed):
            self.errors.append(text)

    def on_page_error(self, error: Any) -> None:
        self.errors.append(f"uncaught: {error}")

    def external(self) -> list[str]:
        return [u for u in self.urls if not u.startswith(self.base + "/") and not u.startswith(LOCAL_SCHEMES)]


@dataclass
class Browsing:
    """Opens pages for one test and checks them when it ends."""

    browser: Any
    server: ServerProcess
    test_name: str
    recorders: list[Recorder] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    shots: int = 0

    def open(self, viewport: dict[str, int] | None = None, *, phone: bool = False, path: str = "/",
             init_script: str | None = None, server: ServerProcess | None = None, tone: str = "ok",
             clock: bool = False, ready: bool = True) -> Any:
        """A page on the server whose badge shows `tone` and whose form is built from GET /modes.

        clock=True installs Playwright's clock, so a test can pause the page's timers (its polling);
        ready=False returns once the page loaded (e.g. a login form, before the app starts).
        """
        target = server or self.server
        options: dict[str, Any] = {"viewport": viewport or (PHONE if phone else LAPTOP), "base_url": target.base}
        if phone:
            options.update(is_mobile=True, has_touch=True, device_scale_factor=2)
        context = self.browser.new_context(**options)
        context.set_default_timeout(UI_MS)
        if init_script:
            context.add_init_script(init_script)
        recorder = Recorder(target.base, allowed=self.allowed)
        context.on("request", recorder.on_request)
        page = context.new_page()
        page.on("console", recorder.on_console)
        page.on("pageerror", recorder.on_page_error)
        self.contexts.append(context)
        self.recorders.append(recorder)
        if clock:
            page.clock.install()
        page.goto(path)
        if not ready:
            return page
        page.wait_for_function(f"document.getElementById('status').dataset.tone === {tone!r}")
        page.wait_for_function("document.getElementById('generate-form').dataset.ready === 'true'")
        return page

    def allow_console(self, pattern: str) -> None:
        """A console error this test provokes on purpose (e.g. a mocked HTTP 429), in every page it opens."""
        self.allowed.append(re.compile(pattern))

    def shot(self, page: Any, name: str, *, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = ARTIFACTS / f"{self.test_name}-{self.shots:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    def wait_job(self, card_or_id: Any, until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
        """Follow a card's job on the server until `until(job)` (default: finished); see `wait_job`."""
        job_id = card_or_id if isinstance(card_or_id, str) else card_or_id.get_attribute("data-job-id")
        return wait_job(self.server, job_id, until)

    def close(self) -> tuple[list[str], list[str], int]:
        for context in self.contexts:
            context.close()
        external = [u for r in self.recorders for u in r.external()]
        errors = [e for r in self.recorders for e in r.errors]
        return external, errors, sum(len(r.urls) for r in self.recorders)


@pytest.fixture
def browsing(browser: Any, server: ServerProcess, request: pytest.FixtureRequest) -> Iterator[Browsing]:
    session = Browsing(browser, server, re.sub(r"[^\w.-]+", "_", request.node.name).strip("_"))
    yield session
    external, errors, seen = session.close()
    assert seen, "no request was recorded"
    assert not external, f"requests left the server's origin: {external}"
    assert not errors, f"console errors: {errors}"


@pytest.fixture
def page(browsing: Browsing) -> Any:
    return browsing.open()


@pytest.fixture(autouse=True)
def _idle_server(server: ServerProcess) -> Iterator[None]:
    """Each test starts and ends with nothing queued or running."""
    cancel_unfinished(server)
    yield
    cancel_unfinished(server)


FINISHED = {"completed", "failed", "canceled"}


def finished(job: dict[str, Any]) -> bool:
    return job["status"] in FINISHED


def wait_job(server: ServerProcess, job_id: str, until: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Poll a job until `until(job)` holds (default: it finished) and return it.

    There is no deadline for the whole job: it fails only when the server stops making progress, i.e.
    when nothing changes (its state, its step, or the step of the job running ahead of it) for
    STEP_ALLOWANCE times the slowest step seen so far, and at least STALL_S. The allowance thus grows
    with the work and with the machine's load; a hung job still fails.
    """
    condition = until or finished
    last_change = time.monotonic()
    slowest = 0.0
    marker: tuple[Any, ...] | None = None
    while True:
        _, job = server.request("GET", f"/jobs/{job_id}")
        if condition(job):
            return job
        assert not finished(job), f"job {job_id} finished without meeting the condition: {job['status']} {job['error']}"
        now = time.monotonic()
        current = server_progress(server, job)
        if current != marker:
            if marker is not None:
                slowest = max(slowest, now - last_change)
            marker, last_change = current, now
        allowance = max(STEP_ALLOWANCE * slowest, STALL_S)
        assert now - last_change < allowance, (
            f"job {job_id} made no progress for {now - last_change:.0f}s (slowest step {slowest:.1f}s): {job}")
        time.sleep(0.05)  # polling interval of a condition wait, not a synchronisation sleep


def server_progress(server: ServerProcess, job: dict[str, Any]) -> tuple[Any, ...]:
    """What changes whenever the server makes progress toward this job: its state, or the running job's step."""
    own = (job["status"], job["position"], job["progressDetail"]["step"])
    if job["status"] != "queued":
        return own
    current = server.request("GET", "/queue/status")[1]["currentJob"]
    return (*own, current and (current["id"], current["step"]))


def step_at_least(n: int) -> Callable[[dict[str, Any]], bool]:
    """A wait_job condition: the job is running and has done n steps (or more)."""
    return lambda job: job["status"] == "processing" and job["progressDetail"]["step"] >= n


def cancel_unfinished(server: ServerProcess) -> None:
    """Cancel every queued or running job and wait until each has stopped (a running one stops at its next step)."""
    ids = []
    for status in ("queued", "processing"):
        _, body = server.request("GET", f"/jobs?status={status}&limit=200")
        for job in body["jobs"]:
            server.request("POST", f"/jobs/{job['id']}/cancel")
            ids.append(job["id"])
    for job_id in ids:
        wait_job(server, job_id)


def wait_finished(server: ServerProcess, job_ids: list[str]) -> None:
    """Jobs submitted through the API (not the page) have finished."""
    for job_id in job_ids:
        wait_job(server, job_id)


def fill_basic(page: Any, prompt: str, *, size: tuple[int, int] = (64, 64), steps: int = 3) -> None:
    """Prompt, a size (a preset chip when one matches) and a step count: the small, fast settings most tests use."""
    page.get_by_label(re.compile(r"^Prompt")).fill(prompt)
    preset = page.locator(f"label[for='size-{size[0]}x{size[1]}']")
    if preset.count():
        preset.click()
    else:
        page.locator("label[for='size-custom']").click()
        page.get_by_label("Width", exact=True).fill(str(size[0]))
        page.get_by_label("Height", exact=True).fill(str(size[1]))
    set_range(page, "num_inference_steps", steps)


def set_range(page: Any, element_id: str, value: float) -> None:
    """Set a range input as a user's drag would, with the input event the page listens to."""
    page.locator(f"#{element_id}").evaluate(
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true})); "
        "el.dispatchEvent(new Event('change', {bubbles: true})); }", value)


IN_VIEW = """(selector) => {
    const el = document.querySelector(selector);
    if (!el) return false;
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) return false;
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return el === hit || el.contains(hit);
}"""


def in_view(page: Any, selector: str) -> bool:
    """The element's box lies inside the viewport and it is the topmost element at its centre (not covered)."""
    return bool(page.evaluate(IN_VIEW, selector))


def wait_in_view(page: Any, selector: str) -> None:
    """Wait (UI_MS at most) until `in_view` holds: after the page's own smooth scrolling, say."""
    page.wait_for_function(IN_VIEW, arg=selector)


def input_png(tmp_path: Path, name: str, size: tuple[int, int] = (96, 64), colour: str = "#3a7bd5") -> Path:
    """A small picture to pick as an input image."""
    image = Image.new("RGB", size, colour)
    ImageDraw.Draw(image).ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill="#f5b700")
    path = tmp_path / name
    image.save(path)
    return path


def posts(page: Any) -> list[str]:
    """Every POST the page sends from now on."""
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    return sent


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def generate(page: Any, mode: str = "text2img") -> tuple[Any, dict[str, Any]]:
    """Click Generate: the card of the job the server queued, and the JSON body the page sent."""
    with page.expect_response(lambda r: r.url.endswith(f"/generate/{mode}") and r.request.method == "POST") as answer:
        page.get_by_role("button", name="Generate", exact=True).click()
    response = answer.value
    assert response.status == 202, response.text()
    card = page.locator(f"#job-list .job-card[data-job-id='{response.json()['id']}']")
    return card, response.request.post_data_json


ShotFn = Callable[[Any, str], Path]
