"""Prototype for issue 20: the MCP SDK's streamable-HTTP server at /mcp inside a Flask app under waitress.

Not sdedge code: the verified shape the real `sdedge/mcp` module can follow (docs/CLIENTS.md, "MCP").
The Starlette app the SDK builds runs on a private asyncio loop through a2wsgi; the loop also holds
`session_manager.run()`, because a mounted app's own lifespan never runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

from a2wsgi import ASGIMiddleware
from flask import Flask
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl

from .http import png

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Waitress refuses hop-by-hop headers from a WSGI app (PEP 3333); the SDK's SSE answer sends Connection.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade"}
MCP_PATHS = ("/mcp/", "/.well-known/oauth-protected-resource")


class StaticTokens:
    """A TokenVerifier over a fixed set; sdedge would look tokens up in its own token table."""

    def __init__(self, tokens: set[str]) -> None:
        self.tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        """The caller's access, or None for an unknown token (the SDK then answers 401)."""
        return AccessToken(token=token, client_id="sdedge-user", scopes=[]) if token in self.tokens else None


def build_mcp(tokens: set[str] | None, public_url: str, steps_delay: float = 0.02) -> MCPServer:
    """An MCP server with one generate tool that reports progress and returns an image and its URL."""
    auth: dict[str, Any] = {}
    if tokens:
        auth = {"token_verifier": StaticTokens(tokens),
                # Static API tokens carry no audience: the verifier is the whole check.
                "auth": AuthSettings(issuer_url=AnyHttpUrl(public_url),
                                     resource_server_url=AnyHttpUrl(public_url + "/mcp"),
                                     validate_token_resource=False)}
    mcp = MCPServer("sdedge", **auth)

    @mcp.tool()
    async def generate_image(prompt: str, steps: int = 4, ctx: Context | None = None) -> list[Image | str]:
        """Generate an image from a prompt; progress is reported per denoising step."""
        for step in range(1, steps + 1):
            await asyncio.sleep(steps_delay)  # sdedge: await anyio.to_thread.run_sync(notifier.wait, ...)
            if ctx is not None:
                await ctx.report_progress(step, steps, f"step {step}/{steps}")
        return [Image(data=png(8, 8), format="png"), "/generated/job-1-0.png"]

    return mcp


def without_hop_by_hop(app: WSGIApp) -> WSGIApp:
    """Drop the headers waitress refuses to send for a WSGI app."""
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP], exc_info)
        return app(environ, start)
    return wrapped


class Mounted:
    """The WSGI app serving Flask and /mcp, and the loop thread the MCP side runs on."""

    def __init__(self, flask_app: Flask, mcp: MCPServer, host: str) -> None:
        security = TransportSecuritySettings(allowed_hosts=[host], allowed_origins=[f"http://{host}"])
        asgi = mcp.streamable_http_app(streamable_http_path="/mcp", transport_security=security)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="mcp-loop", daemon=True)
        self._thread.start()
        ready = threading.Event()
        self._stop: asyncio.Event | None = None

        async def run_sessions() -> None:
            self._stop = asyncio.Event()
            async with mcp.session_manager.run():
                ready.set()
                await self._stop.wait()

        self._sessions = asyncio.run_coroutine_threadsafe(run_sessions(), self.loop)
        if not ready.wait(10):
            raise RuntimeError("the MCP session manager did not start")
        self._mcp: WSGIApp = without_hop_by_hop(ASGIMiddleware(asgi, loop=self.loop))  # type: ignore[arg-type]
        self._flask: WSGIApp = flask_app.wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # /mcp keeps its prefix: a /mcp mount point would turn POST /mcp into a 307 to /mcp/.
        path = environ.get("PATH_INFO", "")
        app = self._mcp if path == "/mcp" or path.startswith(MCP_PATHS) else self._flask
        return app(environ, start_response)

    def close(self) -> None:
        """End the session manager, then the loop."""
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._sessions.result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
