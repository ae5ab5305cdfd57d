"""The MCP mounting prototype works under waitress: tools, image content, progress, tokens, Host checks."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

pytest.importorskip("mcp")
pytest.importorskip("a2wsgi")

import waitress  # noqa: E402
from flask import Flask, jsonify  # noqa: E402

from clients import mcp_prototype, mcp_session  # noqa: E402
from clients.http import call  # noqa: E402
from serverproc import free_port  # noqa: E402

TOKEN = "secret-token"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    port = free_port()
    host = f"127.0.0.1:{port}"
    app = Flask(__name__)
    app.get("/health")(lambda: jsonify(ready=True))
    mounted = mcp_prototype.Mounted(app, mcp_prototype.build_mcp({TOKEN}, f"http://{host}"), host)
    server = waitress.create_server(mounted, host="127.0.0.1", port=port, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://{host}"
    server.close()
    mounted.close()
    thread.join(timeout=10)


def test_session_lists_tools_gets_image_and_progress(base: str) -> None:
    done = mcp_session.generate_sync(base + "/mcp", token=TOKEN, arguments={"prompt": "a fox", "steps": 3})
    kinds = [(block.type, getattr(block, "mime_type", None)) for block in done["content"]]
    assert done["tools"] == ["generate_image"] and kinds == [("image", "image/png"), ("text", None)]
    assert [p[:2] for p in done["progress"]] == [(1, 3), (2, 3), (3, 3)]


def test_token_required_host_checked_flask_untouched(base: str) -> None:
    missing = call("POST", base + "/mcp", json_body={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                   headers={"Accept": "application/json, text/event-stream"})
    assert missing.status == 401 and "resource_metadata=" in missing.headers["www-authenticate"]
    assert call("GET", base + "/.well-known/oauth-protected-resource/mcp").json()["resource"] == base + "/mcp"
    foreign = call("POST", base + "/mcp", json_body={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                   headers={"Host": "evil.example", "Authorization": f"Bearer {TOKEN}",
                            "Accept": "application/json, text/event-stream"})
    assert foreign.status == 421
    assert call("GET", base + "/health").json() == {"ready": True}
