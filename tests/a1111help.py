"""Helpers for tests of the AUTOMATIC1111 API through the unmodified `webuiapi` client against a real server."""

from __future__ import annotations

import webuiapi

from serverproc import ServerProcess

MODEL = "tiny-sd-int8-ov"
FAST = {"width": 64, "height": 64, "steps": 2}


def webui(server: ServerProcess) -> webuiapi.WebUIApi:
    """webuiapi's client on the server's /sdapi/v1, with a sampler and a step count the tiny model runs fast."""
    return webuiapi.WebUIApi(baseurl=f"{server.base}/sdapi/v1", sampler="Euler a", steps=2)
