"""An MCP client session from the official `mcp` SDK (2.x), as an assistant host would open one."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .http import StepFailed

CLIENT = "mcp client"


async def generate(url: str, *, token: str | None = None, tool: str = "generate_image",
                   arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """List the tools, call one with a progress callback; the content blocks and the progress seen."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            if tool not in tools:
                raise StepFailed(CLIENT, "tools/list", f"no {tool!r} among {tools}")
            result = await client.call_tool(tool, arguments or {"prompt": "a lighthouse"},
                                            progress_callback=on_progress)
    if result.is_error:
        raise StepFailed(CLIENT, f"tools/call {tool}", str(result.content)[:300])
    return {"tools": tools, "content": result.content, "progress": seen}


def generate_sync(url: str, *, timeout: float = 120.0, **kw: Any) -> dict[str, Any]:
    """generate() from synchronous code, on a thread of its own: the caller's thread may already run a loop
    (Playwright's sync API leaves one running in the test process)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, generate(url, **kw)).result(timeout=timeout)
