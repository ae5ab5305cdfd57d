"""The web page without a browser: served, complete, self-contained and labelled."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conftest import make_settings
from sdedge.app import create_app

STATIC = Path(__file__).resolve().parent.parent / "static"
TEXT_SUFFIXES = {".html", ".js", ".css", ".svg"}
# XML namespace names are identifiers, never fetched.
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
EXTERNAL = re.compile(r"""(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s"'`)]*|@import|url\(\s*["']?(?:https?:)?//""", re.I)


@pytest.fixture
def page_app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path), load_model=False)
    yield app
    app.extensions["sdedge"].shutdown()


@pytest.fixture
def page_client(page_app: Flask) -> FlaskClient:
    return page_app.test_client()


def static_files() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*") if p.suffix in TEXT_SUFFIXES)


class _Page(HTMLParser):
    """Ids, asset links and form controls of index.html."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.label_for: set[str] = set()
        self.assets: list[str] = []
        self.controls: list[dict[str, str | None]] = []
        self._in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "label":
            self._in_label += 1
            if a.get("for"):
                self.label_for.add(str(a["for"]))
        if tag in {"script", "img"} and a.get("src") or tag == "link" and a.get("href"):
            self.assets.append(str(a.get("src") or a.get("href")))
        if tag in {"input", "select", "textarea"}:
            self.controls.append({**a, "_wrapped": "1" if self._in_label else None})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label -= 1


def parsed_page() -> _Page:
    parser = _Page()
    parser.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    return parser


def test_page_and_its_modules_are_served_with_the_right_types(page_client: FlaskClient) -> None:
    page = page_client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b'<script type="module" src="/static/app.js">' in page.data
    for path in static_files():
        response = page_client.get(f"/static/{path.relative_to(STATIC).as_posix()}")
        assert response.status_code == 200, path
        if path.suffix == ".js":
            assert response.mimetype in {"text/javascript", "application/javascript"}, (path, response.mimetype)


def test_every_linked_asset_and_imported_module_exists() -> None:
    for asset in parsed_page().assets:
        if asset.startswith("/static/"):
            assert (STATIC / asset.removeprefix("/static/")).is_file(), asset
    for module in STATIC.rglob("*.js"):
        for target in re.findall(r"""^\s*(?:import|export)\b[^;]*?from\s+["']([^"']+)["']""", module.read_text(), re.M | re.S):
            assert target.startswith("./"), f"{module.name} imports {target}: only relative modules, no packages"
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports a missing {target}"


def test_static_files_request_nothing_from_other_hosts() -> None:
    found = []
    for path in static_files():
        for match in EXTERNAL.finditer(path.read_text(encoding="utf-8")):
            if match.group(0).rstrip("\"'") not in NAMESPACES:
                found.append(f"{path.relative_to(STATIC)}: {match.group(0)}")
    assert found == [], "the page must work without the internet (no CDNs, web fonts or remote icons)"


def test_there_is_one_stylesheet_and_no_build_step() -> None:
    assert [p.name for p in STATIC.rglob("*.css")] == ["style.css"]
    assert not any((STATIC / name).exists() for name in ("package.json", "node_modules", "dist"))


def test_every_element_id_the_scripts_use_exists_in_the_page() -> None:
    ids = parsed_page().ids
    used = set()
    for module in STATIC.rglob("*.js"):
        used |= set(re.findall(r"""\$\(\s*["']([\w-]+)["']\s*\)""", module.read_text()))
    assert used, "no $(\"id\") lookups found"
    assert sorted(used - ids) == []


def test_every_form_control_has_a_label() -> None:
    page = parsed_page()
    unlabeled = [c for c in page.controls
                 if c.get("type") != "hidden" and not c.get("aria-label") and not c.get("aria-labelledby")
                 and not c["_wrapped"] and c.get("id") not in page.label_for]
    assert unlabeled == []


def page_modules() -> list[Path]:
    return sorted(STATIC.rglob("*.js"))


def test_page_modules_are_small_and_keep_their_state_in_one_object() -> None:
    for module in page_modules():
        text = module.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 250, f"{module.name} has grown past 250 lines: split it by concern"
        assert not re.findall(r"^(?:let|var)\s", text, re.M), f"{module.name}: module-level mutable state goes in one state object"


def test_the_page_takes_modes_and_routes_from_the_server() -> None:
    """GET /modes names the modes, their routes and fields; the page hard-codes no route or mode list."""
    for path in static_files():
        text = path.read_text(encoding="utf-8")
        assert "/generate/" not in text, f"{path.name} hard-codes a generation route"
        assert "data-modes" not in text, f"{path.name} hard-codes which mode shows a field"
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert 'role="tab"' not in html, "the mode tabs are built from GET /modes"


def test_every_field_the_page_shows_is_a_field_the_server_lists(page_client: FlaskClient) -> None:
    """Each data-field control in the page names a field or image input of some mode in GET /modes."""
    listed = set()
    for mode in page_client.get("/modes").get_json()["modes"]:
        listed |= set(mode["fields"]) | set(mode["inputs"])
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    shown = {name for group in re.findall(r'data-field="([^"]+)"', html) for name in group.split()}
    assert shown and shown <= listed, sorted(shown - listed)
