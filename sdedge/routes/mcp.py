"""/mcp: the MCP tool server over streamable HTTP (sdedge.mcp_tools), behind the same security layer."""

from __future__ import annotations

from typing import Any, Union

from flask import Blueprint, current_app, request
from pydantic import BaseModel, RootModel
from werkzeug.wrappers import Response

from sdedge.auth import caller
from sdedge.errors import NotFound
from sdedge.mcp_mount import BASE_URL_KEY, PRINCIPAL_KEY, McpBridge
from sdedge.openapi_spec import ErrorResponse, documented

bp = Blueprint("mcp", __name__)


class JsonRpcError(BaseModel):
    """A JSON-RPC error object."""

    code: int
    message: str
    data: Any = None


class JsonRpcErrorResponse(BaseModel):
    """What the MCP SDK answers to a request it refuses (no session, wrong Accept, bad JSON-RPC)."""

    jsonrpc: str
    id: Union[int, str, None] = None
    error: JsonRpcError


class McpError(RootModel[Union[ErrorResponse, JsonRpcErrorResponse]]):
    """sdedge's error (Host, credential) before the request reaches MCP, or the SDK's JSON-RPC error."""


@bp.route("/mcp", methods=["GET", "POST", "DELETE"])
@documented(responses={200: None, 202: None}, response_content="text/event-stream", error=McpError)
def mcp() -> Response:
    """Model Context Protocol, streamable HTTP: tools to generate and edit images, list models, LoRAs, jobs."""
    bridge: McpBridge | None = current_app.extensions.get("sdedge.mcp")
    if bridge is None:
        raise NotFound("the MCP server is off (MCP_ENABLED=false)")
    request.environ[PRINCIPAL_KEY] = caller()  # the tools act as the caller the security layer found
    request.environ[BASE_URL_KEY] = request.host_url.rstrip("/")
    return bridge.response(request.environ)
