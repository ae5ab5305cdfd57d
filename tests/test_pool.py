"""The engine pool: LRU under MAX_LOADED_MODELS and a measured memory budget; a job shows its model loading."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from conftest import FIXTURE_MODEL, start_app, wait_for
from sdedge.engine.mock import MockEngine
from sdedge.engine.params import Engine
from sdedge.engine.pool import EnginePool, LoadReport
from test_model_library import library_settings

MB = 1024 * 1024


class Recorder:
    """Builds mock engines, each holding `cost` bytes, and remembers which were closed."""

    def __init__(self, cost: int = 0) -> None:
        self.built: list[str] = []
        self.closed: list[str] = []
        self.cost = cost

    def build(self, model_id: str, report: LoadReport) -> Engine:
        self.built.append(model_id)
        engine: Any = MockEngine("CPU")
        engine.ballast = bytearray(self.cost)  # memory the load adds, so the RSS measure sees it
        engine.close = lambda: self.closed.append(model_id)
        return engine


def test_max_loaded_models_unloads_the_least_recently_used_first() -> None:
    pool, rec = EnginePool(max_loaded=2), Recorder()
    for model in ("a", "b", "a", "c"):  # c evicts b: a was used more recently
        pool.get(model, rec.build)
    assert pool.loaded_ids() == ["a", "c"] and rec.closed == ["b"] and rec.built == ["a", "b", "c"]
    assert pool.status()["last_unload"]["model"] == "b"


def test_the_memory_budget_uses_measured_costs() -> None:
    pool, rec = EnginePool(max_loaded=4, budget_bytes=300 * MB), Recorder(cost=200 * MB)
    pool.get("a", rec.build)
    assert pool.status()["loaded"][0]["rss_delta_bytes"] > 150 * MB  # measured, not declared
    pool.get("b", rec.build)  # a (200 MB measured) + b (assumed as large) > 300 MB: a goes first
    assert pool.loaded_ids() == ["b"] and rec.closed == ["a"]


def test_a_job_waiting_for_its_model_shows_the_loading_phase(tmp_path: Path) -> None:
    app = start_app(library_settings(tmp_path))
    loader = app.extensions["sdedge"].loader
    release, real_build = threading.Event(), loader._build_model

    def slow_build(model_id: str, report: LoadReport) -> Engine:
        report("loading model", None)
        assert release.wait(120)
        return real_build(model_id, report)

    loader._build_model = slow_build
    client = app.test_client()
    job = client.post("/generate/text2img", json={"prompt": "x", "model": "my-model", "num_inference_steps": 2,
                                                  "width": 64, "height": 64}).get_json()
    loading = wait_for(lambda: (j := client.get(f"/jobs/{job['id']}").get_json())["phase"] and
                       j["phase"]["name"] == "loading model" and j)
    assert loading["status"] == "processing" and loading["model"] == "my-model"
    assert client.get("/models/my-model").get_json()["loading"]
    stream = client.get(f"/jobs/{job['id']}/events", buffered=False)
    first = next(iter(stream.response)).decode()  # the stream's first event, while the model still loads
    stream.close()
    assert first.startswith("event: progress") and '"name": "loading model"' in first and '"model": "my-model"' in first
    release.set()
    done = wait_for(lambda: (j := client.get(f"/jobs/{job['id']}").get_json())["status"] == "completed" and j,
                    timeout=300)
    assert done["result"]["model"] == "my-model" and FIXTURE_MODEL.is_dir()


def test_a_model_that_will_not_load_fails_its_job_with_the_reason_and_the_next_job_runs(tmp_path: Path) -> None:
    settings = library_settings(tmp_path)
    broken = shutil.copytree(FIXTURE_MODEL, settings.models_dir / "broken")
    (broken / "unet" / "openvino_model.xml").write_text("<net>not an IR</net>")
    client = start_app(settings).test_client()
    body = {"prompt": "x", "num_inference_steps": 2, "width": 64, "height": 64}
    bad = client.post("/generate/text2img", json={**body, "model": "broken"}).get_json()
    good = client.post("/generate/text2img", json=body).get_json()
    ended = wait_for(lambda: (j := client.get(f"/jobs/{bad['id']}").get_json())["status"] == "failed" and j, timeout=300)
    assert ended["errorDetail"]["code"] == "model_unavailable" and "loading model broken" in ended["error"]
    assert wait_for(lambda: client.get(f"/jobs/{good['id']}").get_json()["status"] == "completed", timeout=300)
