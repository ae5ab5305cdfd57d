"""The MCP tool server: an `mcp` SDK client session against /mcp of the real app under waitress (tiny model):
tools listed, an image generated with progress notifications, edits, jobs, tokens; `sdedge mcp` over stdio."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import waitress
from flask import Flask
from PIL import Image

from authhelp import Account, add_account
from clients import mcp_session
from clients.http import call
from conftest import make_settings, start_app
from sdedge.principal import SYSTEM
from serverproc import FIXTURE_MODEL, free_port, sdedge_command, user_environment

TOOLS = {"generate_image", "edit_image", "list_models", "list_loras", "get_job", "cancel_job"}


class Served:
    """The app under waitress on a free port, as `sdedge serve` runs it."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = waitress.create_server(app, host="127.0.0.1", port=self.port, threads=6, asyncore_use_poll=True)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        # closed in the server's own loop thread (from here it races the loop's poll); poll(), unlike
        # select(), reports a descriptor closed meanwhile instead of raising EBADF
        try:
            self.server.trigger.pull_trigger(self.server.close)  # type: ignore[attr-defined]
        except OSError:
            # the trigger pipe is gone (CI saw EBADF once: a stale descriptor number closed elsewhere in
            # the test process, after which the loop closes its trigger); close from here, poll copes
            self.server.close()
        self.thread.join(timeout=2)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    found = Served(start_app(make_settings(tmp_path)))
    yield found
    found.close()


def run(coro: Any, timeout: float = 180.0) -> Any:
    """An async client session from a test, on a thread of its own."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=timeout)


async def session_calls(url: str, calls: list[tuple[str, dict[str, Any]]], token: str | None = None) -> list[Any]:
    """Open one client session and make the tool calls in order; their results."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            return [await client.call_tool(name, arguments) for name, arguments in calls]


def png_of(block: Any) -> Image.Image:
    assert block.type == "image" and block.mime_type == "image/png"
    return Image.open(io.BytesIO(base64.b64decode(block.data)))


def test_session_lists_tools_generates_with_progress_and_a_file_url(served: Served) -> None:
    done = mcp_session.generate_sync(served.base + "/mcp", arguments={"prompt": "a lighthouse", "size": "64x48",
                                                                      "steps": 3, "seed": 7})
    assert set(done["tools"]) == TOOLS
    image, text = done["content"]
    assert png_of(image).size == (64, 48)
    summary = json.loads(text.text)
    assert summary["seeds"] == [7] and summary["images"][0].startswith(served.base + "/generated/")
    assert call("GET", summary["images"][0]).body == base64.b64decode(image.data)
    progress = [p for p, _, _ in done["progress"]]
    assert progress and progress[-1] == 3 and progress == sorted(progress)
    assert all(total == 3 for _, total, _ in done["progress"])


def test_edit_get_cancel_and_listings(served: Served) -> None:
    first = mcp_session.generate_sync(served.base + "/mcp", arguments={"prompt": "a cube", "size": "64x64",
                                                                       "steps": 2})
    url = json.loads(first["content"][-1].text)["images"][0]
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    mask_url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    img2img, inpaint, models, loras, job = run(session_calls(served.base + "/mcp", [
        ("edit_image", {"image": url, "prompt": "a blue cube", "strength": 0.6, "steps": 2}),
        ("edit_image", {"image": url, "mask": mask_url, "prompt": "a hole", "steps": 2}),
        ("list_models", {}),
        ("list_loras", {}),
        ("get_job", {"job_id": json.loads(first["content"][-1].text)["job_id"]}),
    ]))
    generation = served.app.extensions["sdedge"].generation
    long = generation.submit("text2img", {"prompt": "long", "width": 64, "height": 64, "num_inference_steps": 100,
                                         "num_images": 4},
                             caller=SYSTEM).job
    (canceled,) = run(session_calls(served.base + "/mcp", [("cancel_job", {"job_id": long.id})]))
    assert not img2img.is_error and png_of(img2img.content[0]).size == (64, 64)
    assert not inpaint.is_error and png_of(inpaint.content[0]).size == (64, 64)
    assert models.structured_content["models"][0]["loaded"] is True
    assert loras.structured_content == {"loras": []}
    assert job.structured_content["status"] == "completed"
    assert job.structured_content["result"]["images"][0].startswith(served.base + "/generated/")
    assert not canceled.is_error and canceled.structured_content["id"] == long.id
    assert generation.wait(long.id, 60).status.value == "canceled"


def test_bad_arguments_are_tool_errors(served: Served) -> None:
    bad_size, unknown = run(session_calls(served.base + "/mcp", [
        ("generate_image", {"prompt": "x", "size": "huge"}),
        ("get_job", {"job_id": "job-0000"}),
    ]))
    assert bad_size.is_error and "512x512" in bad_size.content[0].text
    assert unknown.is_error and "job-0000" in unknown.content[0].text


def test_with_users_a_token_is_needed(served: Served) -> None:
    alice: Account = add_account(served.app, "alice")
    bob = add_account(served.app, "bob")
    with pytest.raises(Exception):
        mcp_session.generate_sync(served.base + "/mcp", arguments={"prompt": "x"})
    refused = call("POST", served.base + "/mcp", json_body={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                   headers={"Accept": "application/json, text/event-stream"})
    assert refused.status == 401 and "Bearer" in refused.headers["www-authenticate"]
    wrong = call("POST", served.base + "/mcp", json_body={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                 headers={"Accept": "application/json, text/event-stream", "Authorization": "Bearer nope"})
    assert wrong.status == 401
    done = mcp_session.generate_sync(served.base + "/mcp", token=alice.token,
                                     arguments={"prompt": "x", "size": "64x64", "steps": 2})
    job_id = json.loads(done["content"][-1].text)["job_id"]
    assert served.app.extensions["sdedge"].generation.job_store.get(job_id).owner is not None
    (other,) = run(session_calls(served.base + "/mcp", [("get_job", {"job_id": job_id})], token=bob.token))
    assert other.is_error  # bob does not see alice's job: the same ownership rules as the HTTP API


def test_a_foreign_host_is_refused(served: Served) -> None:
    refused = call("POST", served.base + "/mcp", json_body={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                   headers={"Host": "evil.example", "Accept": "application/json, text/event-stream"})
    assert refused.status == 400


def test_sdedge_mcp_over_stdio(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    command = sdedge_command()
    env = {**user_environment(), "STABLE_DIFFUSION_REPO_ID": str(FIXTURE_MODEL), "AUTO_DOWNLOAD_MODELS": "false",
           "OPENVINO_DEVICE": "CPU", "DATA_DIR": str(tmp_path / "data"),
           "GENERATED_IMAGES_DIR": str(tmp_path / "generated"), "MIN_SIZE": "32"}

    async def session() -> tuple[list[str], Any, list[float]]:
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        params = StdioServerParameters(command=command[0], args=[*command[1:], "mcp"], env=env, cwd=str(tmp_path))
        async with Client(params) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            result = await client.call_tool("generate_image", {"prompt": "a boat", "size": "64x64", "steps": 2},
                                            progress_callback=on_progress)
        return tools, result, seen

    tools, result, seen = run(session(), timeout=300)
    assert set(tools) == TOOLS and not result.is_error, result.content
    assert png_of(result.content[0]).size == (64, 64) and seen
    paths = json.loads(result.content[-1].text)["paths"]
    assert Path(paths[0]).is_file() and Path(paths[0]).parent == tmp_path / "generated"



def test_a_call_the_client_gives_up_on_cancels_its_job(served: Served) -> None:
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def give_up() -> None:
        stepped = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            if progress >= 1:
                stepped.set()

        async with httpx2.AsyncClient(timeout=60) as http:
            async with Client(streamable_http_client(served.base + "/mcp", http_client=http)) as client:
                async with anyio.create_task_group() as group:
                    async def generate() -> None:
                        await client.call_tool("generate_image", {"prompt": "slow", "size": "64x64", "steps": 100},
                                               progress_callback=on_progress)
                    group.start_soon(generate)
                    await stepped.wait()
                    group.cancel_scope.cancel()

    run(give_up())
    store = served.app.extensions["sdedge"].generation.job_store
    (job,) = store.list_jobs(None, 5, None)
    finished = served.app.extensions["sdedge"].generation.wait(job.id, 60)
    assert finished.status.value == "canceled" and finished.progress_step < 100


def test_rate_limit_counts_tool_generations(tmp_path: Path) -> None:
    served = Served(start_app(make_settings(tmp_path, rate_limit="1/minute")))
    try:
        first, second = run(session_calls(served.base + "/mcp", [
            ("generate_image", {"prompt": "one", "size": "64x64", "steps": 1}),
            ("generate_image", {"prompt": "two", "size": "64x64", "steps": 1}),
        ]))
        assert not first.is_error
        assert second.is_error and "RATE_LIMIT" in second.content[0].text
    finally:
        served.close()


def test_sdedge_mcp_refuses_to_share_a_data_dir_with_a_running_server(tmp_path: Path) -> None:
    import subprocess

    from conftest import wait_for

    app = start_app(make_settings(tmp_path))
    svc = app.extensions["sdedge"]
    wait_for(lambda: svc.nodes.live(15), timeout=30)  # the worker has said it is alive
    env = {**user_environment(), "STABLE_DIFFUSION_REPO_ID": str(FIXTURE_MODEL), "AUTO_DOWNLOAD_MODELS": "false",
           "DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([*sdedge_command(), "mcp"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and "/mcp" in done.stderr and done.stdout == ""
