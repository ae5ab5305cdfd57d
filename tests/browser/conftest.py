"""Browser tests: Playwright driving Debian's Chromium against a real `sdedge serve` on the tiny model.

One server and one browser serve the whole module run; every test gets fresh browser contexts whose
requests and console messages are recorded and checked when the test ends: nothing may leave the
server's origin and nothing may be logged as an error. Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from serverproc import ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

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
    proc = ServerProcess(tmp_path_factory.mktemp("browser-server"), OPENVINO_DEVICE="CPU",
                         PREVIEW_MIN_INTERVAL_MS="100").start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
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
    shots: int = 0

    def open(self, viewport: dict[str, int] | None = None, *, phone: bool = False, path: str = "/",
             init_script: str | None = None) -> Any:
        options: dict[str, Any] = {"viewport": viewport or (PHONE if phone else LAPTOP), "base_url": self.server.base}
        if phone:
            options.update(is_mobile=True, has_touch=True, device_scale_factor=2)
        context = self.browser.new_context(**options)
        context.set_default_timeout(15_000)
        if init_script:
            context.add_init_script(init_script)
        recorder = Recorder(self.server.base)
        context.on("request", recorder.on_request)
        page = context.new_page()
        page.on("console", recorder.on_console)
        page.on("pageerror", recorder.on_page_error)
        self.contexts.append(context)
        self.recorders.append(recorder)
        page.goto(path)
        page.wait_for_function("document.getElementById('status').dataset.tone === 'ok'")
        return page

    def allow_console(self, pattern: str) -> None:
        """A console error this test provokes on purpose (e.g. a mocked HTTP 429)."""
        for recorder in self.recorders:
            recorder.allowed.append(re.compile(pattern))

    def shot(self, page: Any, name: str, *, full_page: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = ARTIFACTS / f"{self.test_name}-{self.shots:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

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


def cancel_unfinished(server: ServerProcess, timeout: float = 30) -> None:
    for status in ("queued", "running"):
        _, body = server.request("GET", f"/jobs?status={status}&limit=200")
        for job in body["jobs"]:
            server.request("POST", f"/jobs/{job['id']}/cancel")
    deadline = time.monotonic() + timeout
    while server.request("GET", "/queue/status")[1]["processingJobs"] and time.monotonic() < deadline:
        time.sleep(0.1)  # server-side clean-up between tests, not a page wait


def wait_finished(server: ServerProcess, job_ids: list[str], timeout: float = 60) -> None:
    """Jobs submitted through the API (not the page) have finished."""
    deadline = time.monotonic() + timeout
    for job_id in job_ids:
        while server.request("GET", f"/jobs/{job_id}")[1]["status"] in {"queued", "running"}:
            assert time.monotonic() < deadline, f"job {job_id} did not finish in {timeout}s"
            time.sleep(0.1)  # server-side set-up, not a page wait


def fill_basic(page: Any, prompt: str, *, size: tuple[int, int] = (64, 64), steps: int = 3) -> None:
    """Prompt, a custom size and a step count: the small, fast settings most tests use."""
    page.get_by_label(re.compile(r"^Prompt")).fill(prompt)
    if size in {(512, 512), (768, 512), (512, 768)}:
        page.locator(f"label[for='size-{size[0]}x{size[1]}']").click()
    else:
        page.locator("label[for='size-custom']").click()
        page.get_by_label("Width").fill(str(size[0]))
        page.get_by_label("Height").fill(str(size[1]))
    set_range(page, "num_inference_steps", steps)


def set_range(page: Any, element_id: str, value: float) -> None:
    """Set a range input as a user's drag would, with the input event the page listens to."""
    page.locator(f"#{element_id}").evaluate(
        "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', {bubbles: true})); "
        "el.dispatchEvent(new Event('change', {bubbles: true})); }", value)


ShotFn = Callable[[Any, str], Path]
