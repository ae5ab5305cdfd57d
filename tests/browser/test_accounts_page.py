"""The page on a server with accounts: log in, generate, the account panel's tokens, log out; and the
open server's notice that anyone on the network can use it."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from authhelp import cli
from serverproc import ServerProcess

from .conftest import PHONE, TINY_MODEL_SETTINGS, Browsing, fill_basic, generate

expect = pytest.importorskip("playwright.sync_api").expect

PASSWORD = "page test password"


@pytest.fixture(scope="module")
def accounts_server(chromium_path: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("accounts-page"), defaults=True, **TINY_MODEL_SETTINGS)
    cli(proc, "users", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    proc.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def api(server: ServerProcess, path: str, token: str) -> int:
    request = urllib.request.Request(server.base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as err:
        return err.code


def log_in(browsing: Browsing, server: ServerProcess, password: str = PASSWORD, **options: Any) -> Any:
    page = browsing.open(server=server, ready=False, **options)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.locator("main").is_hidden() and page.locator("#status").is_hidden()
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    return page


def test_the_page_logs_in_and_generates_an_image(browsing: Browsing, accounts_server: ServerProcess) -> None:
    page = log_in(browsing, accounts_server)
    page.wait_for_function("document.getElementById('status').dataset.tone === 'ok'")
    page.wait_for_function("document.getElementById('generate-form').dataset.ready === 'true'")
    expect(page.locator("#account-button")).to_contain_text("alice")
    assert page.locator("#open-banner").is_hidden()
    fill_basic(page, "a red fox in the snow")
    card, _ = generate(page)
    result = card.locator("img.job-result")
    expect(result).to_be_visible(timeout=120_000)  # the job runs on the tiny model; generous on a busy machine
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=result.element_handle())
    assert page.evaluate("img => img.naturalWidth", result.element_handle()) == 64
    browsing.shot(page, "logged-in-done")


def test_a_wrong_password_is_said_on_the_form(browsing: Browsing, accounts_server: ServerProcess) -> None:
    browsing.allow_console(r"status of 401")  # the browser logs the refused login itself
    page = log_in(browsing, accounts_server, password="not the password", viewport=PHONE, phone=True)
    expect(page.locator("#login-error")).to_contain_text(re.compile("wrong user name or password", re.I))
    assert page.locator("main").is_hidden()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    browsing.shot(page, "wrong-password")


def test_the_account_panel_creates_shows_once_and_revokes_a_token(browsing: Browsing,
                                                                   accounts_server: ServerProcess) -> None:
    page = log_in(browsing, accounts_server)
    page.get_by_role("button", name=re.compile("Account")).click()
    expect(page.locator("#account-who")).to_contain_text("Signed in as alice")
    page.get_by_label("Label").fill("phone")
    page.get_by_role("button", name="Create token").click()
    value = page.locator("#new-token-value")
    expect(value).to_have_value(re.compile(r"^sdedge_"))
    token = value.input_value()
    assert api(accounts_server, "/jobs", token) == 200
    item = page.locator("#token-list .token", has_text="phone")
    expect(item).to_be_visible()
    assert token not in page.locator("#token-list").inner_text()
    browsing.shot(page, "token-created")
    page.get_by_role("button", name="Revoke token phone").click()
    expect(item).to_have_count(0)
    assert api(accounts_server, "/jobs", token) == 401
    page.get_by_role("button", name=re.compile("Account")).click()  # closing the panel forgets the token
    page.get_by_role("button", name=re.compile("Account")).click()
    expect(page.locator("#new-token")).to_be_hidden()


def test_logging_out_returns_to_the_login_form(browsing: Browsing, accounts_server: ServerProcess) -> None:
    browsing.allow_console(r"status of 401")  # the check below, after logging out
    page = log_in(browsing, accounts_server)
    page.get_by_role("button", name=re.compile("Account")).click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.reload()  # the session is over on the server too, not only on this page
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("fetch('/jobs').then(r => r.status)") == 401


def test_an_open_server_says_anyone_on_the_network_can_use_it(browsing: Browsing, page: Any) -> None:
    banner = page.locator("#open-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("anyone on the network can use it")
    assert page.locator("#account-button").is_hidden() and page.locator("#login").is_hidden()
    browsing.shot(page, "open-notice")
