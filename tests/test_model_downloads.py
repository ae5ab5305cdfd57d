"""Downloading a catalog model through the API and the CLI (against a local stand-in of the hub), and deleting it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import test_model_files as hubfake
from conftest import FIXTURE_MODEL, make_settings, start_app, wait_for
from sdedge.cli import main

CATALOG_REPO = "OpenVINO/LCM_Dreamshaper_v7-int8-ov"
MODEL_ID = "lcm_dreamshaper_v7-int8-ov"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[hubfake.FakeHub]:
    """The fake hub serving the tiny SD fixture under a catalog repo's name (whose catalog family is LCM)."""
    monkeypatch.setattr(hubfake, "REPO", CATALOG_REPO)
    fake, server = hubfake._start_hub(hubfake._read_tree(FIXTURE_MODEL))
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    yield fake
    server.shutdown()
    server.server_close()


def _model(client: Any, model_id: str = MODEL_ID) -> dict[str, Any]:
    found: dict[str, Any] = client.get(f"/models/{model_id}").get_json()
    return found


def test_download_from_the_api_shows_progress_then_the_folders_family(hub: hubfake.FakeHub, tmp_path: Path) -> None:
    app = start_app(make_settings(tmp_path))
    client = app.test_client()
    before = _model(client)
    assert not before["installed"] and before["family"] == "lcm" and before["family_source"] == "catalog"
    reply = client.post(f"/models/{MODEL_ID}/download")
    assert reply.status_code == 202 and reply.get_json()["download"]["total_bytes"] > 0
    done = wait_for(lambda: (m := _model(client))["installed"] and m, timeout=120)
    assert done["download"]["state"] == "complete" and done["download"]["percent"] == 100.0
    # the catalog said LCM; the folder's model_index.json says plain SD, and the folder wins
    assert done["family"] == "sd" and done["family_source"] == "model_index.json" and done["size_bytes"] > 100_000
    job = client.post("/generate/text2img", json={"prompt": "x", "model": MODEL_ID, "num_inference_steps": 2,
                                                  "width": 64, "height": 64}).get_json()
    ended = wait_for(lambda: (j := client.get(f"/jobs/{job['id']}").get_json())["status"] != "queued"
                     and j["status"] != "processing" and j, timeout=300)
    assert ended["status"] == "completed" and ended["model"] == MODEL_ID
    removed = client.delete(f"/models/{MODEL_ID}")
    assert removed.status_code == 200 and removed.get_json()["freed_bytes"] > 100_000
    assert not _model(client)["installed"] and not _model(client)["loaded"]


def test_a_download_that_cannot_fit_is_refused_before_it_starts(hub: hubfake.FakeHub, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    app = start_app(make_settings(tmp_path))

    class Usage(NamedTuple):
        total: int
        used: int
        free: int

    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))
    reply = app.test_client().post(f"/models/{MODEL_ID}/download")
    assert reply.status_code == 507 and "not enough disk space" in reply.get_json()["error"]["message"]
    assert not hub.fetched()


def test_the_default_model_and_local_folders_are_not_deleted(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path)).test_client()
    reply = client.delete("/models/tiny-sd-int8-ov")
    assert reply.status_code == 409 and FIXTURE_MODEL.is_dir()


def test_cli_pull_list_and_rm(hub: hubfake.FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STABLE_DIFFUSION_REPO_ID", str(FIXTURE_MODEL))
    monkeypatch.setenv("MODELS_CACHE_DIR", str(tmp_path / "models"))
    assert main(["models", "pull", MODEL_ID]) == 0
    out, err = capsys.readouterr()
    assert "is complete in" in out and "100%" in err  # tqdm's bar on stderr
    assert main(["models", "list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows[MODEL_ID][1:3] == ["sd", "yes"] and rows["tiny-sd-int8-ov"][-1] == "(default)"
    assert rows["flux.1-schnell-int8-ov"][2] == "no"
    assert main(["models", "rm", MODEL_ID]) == 0
    assert "removed" in capsys.readouterr().out
    assert main(["models", "rm", "tiny-sd-int8-ov"]) == 1
