"""Placement: a remote model's jobs go to the node whose worker serves it, whichever node took the request;
a model name that is no remote one stays with the local model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import make_settings, start_app, wait_for
from pgserver import PostgresServer
from standins.stability import StabilityStandIn


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().init().start()
    yield server
    server.remove()


def test_a_name_that_is_no_remote_model_runs_on_the_local_model(tmp_path: Path) -> None:
    client = start_app(make_settings(tmp_path)).test_client()
    job = client.post("/generate/text2img", json={"prompt": "x", "model": "stable-diffusion-v1-5", "steps": 1})
    # the model library: SD 1.5's name, not downloaded, is served by the default model (an SD 1.x one)
    assert job.status_code == 202 and job.get_json()["model"] == "tiny-sd-int8-ov"
    models = client.get("/models").get_json()["models"]
    assert models[0]["source"] == "configured" and not [m for m in models if m["source"] == "remote"]


def test_any_node_of_the_fleet_takes_jobs_for_another_node_s_remote_model(tmp_path: Path,
                                                                          postgres: PostgresServer) -> None:
    url = postgres.create_database("remote_fleet")
    with StabilityStandIn() as api:
        engines = [{"id": "sai", "kind": "stability", "url": api.base_url, "key": "sk-test"}]
        alpha = start_app(make_settings(tmp_path / "alpha", database_url=url, node_name="alpha",
                                        remote_engines=engines, worker_poll_seconds=0.2)).test_client()
        beta = start_app(make_settings(tmp_path / "beta", database_url=url, node_name="beta",
                                       worker_poll_seconds=0.2)).test_client()
        listed = alpha.get("/models").get_json()["models"]
        assert [m["id"] for m in listed if m["source"] == "remote"] == ["sai"] and listed[-1]["id"] == "sai"
        # beta knows the model from the nodes table, once alpha's workers were recorded there
        wait_for(lambda: any((w.get("remote") or {}).get("id") == "sai" for node in
                             beta.get("/queue/status").get_json()["nodes"] for w in node["workers"]), timeout=60)
        job = beta.post("/generate/text2img", json={"prompt": "a lighthouse", "model": "sai", "seed": 3}).get_json()
        assert job["model"] == "sai"
        done = wait_for(lambda: (j := beta.get(f"/jobs/{job['id']}").get_json())["status"] in ("completed", "failed")
                        and j, timeout=120)
        assert done["status"] == "completed", done["error"]
        assert done["node"]["name"] == "alpha" and done["result"]["worker"]["remote"] == "sai"
        assert beta.get(done["result"]["urls"][0]).status_code == 200  # served by the node that took the request
        wrong = beta.post("/generate/img2img", json={"prompt": "x", "model": "sai", "init_image": "AAAA"})
        # alpha's remote model (Stability core) runs text2img and inpaint only
        assert wrong.status_code == 400 and "cannot run img2img" in wrong.get_json()["error"]["message"]
