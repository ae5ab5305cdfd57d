"""Serving the MCP SDK's streamable-HTTP app (ASGI) inside the Flask app (WSGI) at /mcp.

The `/mcp` route (sdedge.routes.mcp) passes each request, after the security layer let it through, to
the SDK's Starlette app through a2wsgi. That app runs on a private asyncio loop in a daemon thread,
started at the first /mcp request (create_app may run many times, as in tests, without a loop each).
The loop also holds `session_manager.run()`, because a mounted app's own lifespan never runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from werkzeug.wrappers import Response

from sdedge.services import Services

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Waitress refuses hop-by-hop headers from a WSGI app (PEP 3333); the SDK's SSE answer sends Connection.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade"}
START_SECONDS = 10.0
PRINCIPAL_KEY = "sdedge.principal"  # WSGI environ key the /mcp route sets to the request's caller
BASE_URL_KEY = "sdedge.base_url"  # and the URL the client reached the server by, for absolute file links


class McpBridge:
    """The MCP server of one app and the loop it runs on, started on first use."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._lock = threading.Lock()
        self._wsgi: WSGIApp | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._sessions: Any = None

    def response(self, environ: dict[str, Any]) -> Response:
        """The SDK's answer to this request, streamed (progress notifications arrive as they happen)."""
        wsgi = self._started()
        # Flask's route is /mcp, the SDK's too: the path goes through unchanged.
        return Response.from_app(_without_hop_by_hop(wsgi), environ)

    def _started(self) -> WSGIApp:
        with self._lock:
            if self._wsgi is None:
                self._wsgi = self._start()
            return self._wsgi

    def _start(self) -> WSGIApp:
        from mcp.server.transport_security import TransportSecuritySettings

        from sdedge.mcp_tools import build_mcp

        mcp = build_mcp(self.svc)
        # The Host allow-list and authentication ran already, in the Flask app (sdedge.security).
        asgi = mcp.streamable_http_app(streamable_http_path="/mcp",
                                       max_request_body_size=self.svc.settings.max_request_bytes,
                                       transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="sdedge-mcp", daemon=True)
        self._thread.start()
        ready = threading.Event()

        async def run_sessions() -> None:
            self._stop = asyncio.Event()
            async with mcp.session_manager.run():
                ready.set()
                await self._stop.wait()

        self._sessions = asyncio.run_coroutine_threadsafe(run_sessions(), loop)
        if not ready.wait(START_SECONDS):
            raise RuntimeError("the MCP session manager did not start")
        self.svc.closers.append(self.close)
        return _wsgi_of(asgi, loop)

    def close(self) -> None:
        """End the MCP sessions, then the loop."""
        loop = self._loop
        if loop is None:
            return
        if self._stop is not None:
            loop.call_soon_threadsafe(self._stop.set)
        try:
            self._sessions.result(timeout=START_SECONDS)
        except Exception:  # noqa: BLE001 - shutting down: an open session's error changes nothing
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=START_SECONDS)
        self._loop = None


def _wsgi_of(asgi: Any, loop: asyncio.AbstractEventLoop) -> WSGIApp:
    """a2wsgi's bridge, plus the one thing it leaves out: when waitress finds the client gone and closes
    the response early, the ASGI app is told `http.disconnect` (the SDK then cancels the tool call, and
    the tool its job), instead of writing to nobody until the job ends."""
    from a2wsgi.asgi import ASGIResponder

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        responder = ASGIResponder(asgi, loop)
        chunks = responder(environ, start_response)  # type: ignore[arg-type]
        return _TellsDisconnect(chunks, responder)
    return app


class _TellsDisconnect:
    """The response chunks; closed before the end, the ASGI side hears that the client went away."""

    def __init__(self, chunks: Iterable[bytes], responder: Any) -> None:
        self.chunks, self.responder, self.finished = chunks, responder, False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        self.finished = True

    def close(self) -> None:
        """Waitress calls this when the response ends, or when the client disconnected."""
        if not self.finished and not self.responder.asgi_done.is_set():
            self.responder.receive_event.set({"type": "http.disconnect"})
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


def _without_hop_by_hop(app: WSGIApp) -> WSGIApp:
    """Drop the headers waitress refuses to send for a WSGI app."""
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP], exc_info)
        return app(environ, start)
    return wrapped
