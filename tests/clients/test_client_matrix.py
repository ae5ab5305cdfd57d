"""The README's client matrix: each row against one real `sdedge serve` on the tiny model, with an account
made by the CLI and the exact settings a user types into that client (README "Clients: the matrix")."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import webuiapi
from prometheus_client.parser import text_string_to_metric_families

from authhelp import AccountServer, server_with_account
from clients import mcp_session, openwebui, sillytavern
from clients.http import png_size

pytestmark = pytest.mark.slow
PASSWORD = "a long matrix password"
METRICS_TOKEN = "prometheus-scrape-secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccountServer]:
    with server_with_account(tmp_path_factory.mktemp("matrix"), PASSWORD, label="matrix",
                             METRICS_TOKEN=METRICS_TOKEN) as running:
        yield running


def test_openai_sdk(server: AccountServer) -> None:
    client = openai.OpenAI(base_url=f"{server.base}/v1", api_key=server.token, max_retries=0, timeout=120)
    result = client.images.generate(prompt="a red square", size="64x64", response_format="b64_json",
                                    extra_body={"num_inference_steps": 2})
    assert result.data[0].b64_json


def test_webuiapi(server: AccountServer) -> None:
    api = webuiapi.WebUIApi(host="127.0.0.1", port=server.port, sampler="Euler a", steps=2)
    api.set_auth("alice", server.token)
    result = api.txt2img(prompt="a lighthouse", seed=5, width=64, height=64)
    assert result.images[0].size == (64, 64) and result.info["seed"] == 5


def test_mcp_client_session(server: AccountServer) -> None:
    done = mcp_session.generate_sync(server.base + "/mcp", token=server.token,
                                     arguments={"prompt": "a fox", "size": "64x64", "steps": 2})
    assert done["content"][0].type == "image" and done["progress"]
    assert json.loads(done["content"][-1].text)["images"][0].startswith(server.base + "/generated/")


def test_curl(server: AccountServer, tmp_path: Path) -> None:
    auth = ["-H", f"Authorization: Bearer {server.token}"]
    answer = subprocess.run(["curl", "-sS", "--fail-with-body", *auth, "-H", "Content-Type: application/json",
                             "-d", '{"prompt": "a boat", "width": 64, "height": 64, "num_inference_steps": 2}',
                             f"{server.base}/image"], capture_output=True, text=True, timeout=180, check=True)
    url = json.loads(answer.stdout)["urls"][0]
    subprocess.run(["curl", "-sS", "--fail", *auth, "-o", str(tmp_path / "boat.png"), server.base + url],
                   timeout=60, check=True)
    assert png_size((tmp_path / "boat.png").read_bytes()) == (64, 64)


def test_prometheus_scrape(server: AccountServer) -> None:
    answer = subprocess.run(["curl", "-sS", "--fail", "-H", f"Authorization: Bearer {METRICS_TOKEN}",
                             server.base + "/metrics"], capture_output=True, text=True, timeout=60, check=True)
    names = {family.name for family in text_string_to_metric_families(answer.stdout)}
    assert {"sdedge_jobs", "sdedge_queue_depth", "sdedge_model_state", "sdedge_output_free_bytes"} <= names


def test_open_webui_automatic1111_engine(server: AccountServer) -> None:
    done = openwebui.a1111_session(server.base, auth=f"alice:{server.token}", size="64x64", steps=2)
    assert png_size(done["images"][0]) == (64, 64) and done["models"][0]["id"] == done["model"]


def test_open_webui_openai_engine(server: AccountServer) -> None:
    generated = openwebui.openai_session(server.base + "/v1", key=server.token, size="64x64")
    edited = openwebui.openai_edit(server.base + "/v1", key=server.token, size="64x64")
    assert png_size(generated["images"][0]) == (64, 64) and png_size(edited["images"][0]) == (64, 64)


def test_sillytavern_connect_choose_model_generate(server: AccountServer) -> None:
    auth = f"alice:{server.token}"
    sillytavern.ping(server.base, auth)
    models = sillytavern.names(server.base, auth, "/sdapi/v1/sd-models", "title")
    assert sillytavern.set_model(server.base, models[0], auth) >= 1
    done = sillytavern.generate(server.base, " a lighthouse", auth, width=64, height=64, steps=2)
    assert png_size(done["image"]) == (64, 64)
