"""Several devices in one box: OPENVINO_DEVICE=GPU,CPU runs one worker per device on the same queue, each
with its own pipelines, and a job asking for a device class is claimed only by that class's worker.

No GPU exists here, so OpenVINO's device list is mocked to show one and the pretend GPU's pipelines are
compiled on the CPU: the GPU worker still runs the GPU path for real (static-shape pipelines per size).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from conftest import make_settings, start_app, wait_for
from sdedge.engine import devices

FINISHED = ("completed", "failed", "canceled")


@pytest.fixture
def pretend_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenVINO sees a GPU; whatever is compiled for it is compiled on the CPU."""
    monkeypatch.setattr(devices, "available_devices", lambda: ["CPU", "GPU"])
    monkeypatch.setattr(devices, "compile_device", lambda device: "CPU")


@pytest.fixture
def two_devices(tmp_path: Path, pretend_gpu: None) -> Iterator[Flask]:
    app = start_app(make_settings(tmp_path, openvino_device="GPU,CPU", worker_poll_seconds=0.2))
    pool = app.extensions["sdedge"].worker
    wait_for(lambda: all(loader.ready for loader in pool.loaders), timeout=600)
    yield app


def submit(client: FlaskClient, **body: Any) -> dict[str, Any]:
    reply = client.post("/generate/text2img", json={"prompt": "x", "steps": 2, **body})
    assert reply.status_code == 202, reply.get_json()
    job: dict[str, Any] = reply.get_json()
    return job


def finished(client: FlaskClient, job_id: str) -> dict[str, Any]:
    return wait_for(lambda: (j := client.get(f"/jobs/{job_id}").get_json())["status"] in FINISHED and j, timeout=300)


def test_one_worker_per_device_each_with_its_own_engine(two_devices: Flask) -> None:
    svc = two_devices.extensions["sdedge"]
    engines = [loader.engine() for loader in svc.worker.loaders]
    assert [engine.device for engine in engines] == ["GPU", "CPU"] and engines[0] is not engines[1]
    assert engines[0].info()["compiled_shapes"] == ["512x512"]  # the GPU path: static shapes, compiled per size
    client = two_devices.test_client()
    health = client.get("/health").get_json()
    assert [(w["label"], w["device"]["actual"], w["device"]["class"]) for w in health["workers"]] == \
        [("GPU", "GPU", "GPU"), ("CPU", "CPU", "CPU")]
    assert health["device"] == {"requested": "GPU,CPU", "actual": "GPU"}  # the first device's engine
    wait_for(lambda: client.get("/queue/status").get_json()["nodes"], timeout=30)
    node = client.get("/queue/status").get_json()["nodes"][0]
    assert [w["device"]["class"] for w in node["workers"]] == ["GPU", "CPU"]  # the nodes table has both


def test_a_gpu_job_waits_for_the_gpu_worker_while_the_cpu_worker_is_free(two_devices: Flask) -> None:
    client = two_devices.test_client()
    long_gpu = submit(client, device="GPU", width=256, height=256, steps=100)
    wait_for(lambda: client.get(f"/jobs/{long_gpu['id']}").get_json()["progressDetail"]["step"] >= 1, timeout=120)
    short_gpu = submit(client, device="gpu", seed=1)  # the class is case-insensitive
    cpu, anywhere = submit(client, device="CPU", seed=2), submit(client, seed=3)
    assert short_gpu["device"] == "GPU" and cpu["device"] == "CPU" and anywhere["device"] is None
    done = [finished(client, job["id"]) for job in (cpu, anywhere)]
    assert [job["result"]["worker"]["label"] for job in done] == ["CPU", "CPU"]  # the GPU worker is busy
    still = client.get(f"/jobs/{short_gpu['id']}").get_json()
    assert client.get(f"/jobs/{long_gpu['id']}").get_json()["status"] == "processing", "the long job ended too soon"
    assert still["status"] == "queued"  # the idle CPU worker did not take the GPU job
    workers = {w["label"]: w["job"] for w in client.get("/queue/status").get_json()["workers"]}
    assert workers == {"GPU": long_gpu["id"], "CPU": None}
    client.post(f"/jobs/{long_gpu['id']}/cancel")
    ran = finished(client, short_gpu["id"])
    assert ran["status"] == "completed" and ran["result"]["worker"] == {"label": "GPU", "device": "GPU",
                                                                         "remote": None}


def test_two_workers_drain_a_mixed_queue(two_devices: Flask) -> None:
    client = two_devices.test_client()
    asked = ["GPU", "CPU", None, "GPU", None, "CPU", None, "GPU"]
    jobs = [submit(client, seed=i, **({"device": d} if d else {})) for i, d in enumerate(asked)]
    done = [finished(client, job["id"]) for job in jobs]
    assert [job["status"] for job in done] == ["completed"] * len(asked), [j["error"] for j in done]
    labels = [job["result"]["worker"]["label"] for job in done]
    assert all(label == want for label, want in zip(labels, asked) if want), list(zip(asked, labels))
    assert {"GPU", "CPU"} <= set(labels)
    assert {job["attempts"] for job in done} == {1}


def test_a_device_class_no_worker_has_is_refused_naming_the_ones_there_are(two_devices: Flask) -> None:
    reply = two_devices.test_client().post("/generate/text2img", json={"prompt": "x", "device": "NPU"})
    error = reply.get_json()["error"]
    assert reply.status_code == 400 and error["message"] == "no worker runs on a NPU: the devices here are CPU, GPU"
    assert error["details"][0]["field"] == "device" and error["details"][0]["valid"] == ["CPU", "GPU"]
    bad = two_devices.test_client().post("/generate/text2img", json={"prompt": "x", "device": "TPU"})
    assert bad.status_code == 400 and bad.get_json()["error"]["details"][0]["field"] == "device"


def test_a_single_missing_device_still_falls_back_to_one_cpu_worker(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices, "available_devices", lambda: ["CPU"])
    app = start_app(make_settings(tmp_path, openvino_device="GPU,NPU"))
    svc = app.extensions["sdedge"]
    assert [loader.device for loader in svc.worker.loaders] == ["CPU"]
    job = finished(app.test_client(), submit(app.test_client(), device="CPU")["id"])
    assert job["status"] == "completed" and job["result"]["worker"]["device"] == "CPU"


def test_models_reports_every_device_a_model_is_loaded_on(tmp_path: Path, pretend_gpu: None) -> None:
    library = tmp_path / "library"
    library.mkdir()
    (library / "second").symlink_to(Path(__file__).parent / "fixtures" / "tiny-sdxl-int8-ov", target_is_directory=True)
    app = start_app(make_settings(tmp_path, openvino_device="GPU,CPU", worker_poll_seconds=0.2, models_dir=library))
    wait_for(lambda: all(loader.ready for loader in app.extensions["sdedge"].worker.loaders), timeout=600)
    client = app.test_client()

    def devices() -> dict[str, list[tuple[str, str]]]:
        return {m["id"]: [(d["device"], d["actual"]) for d in m["devices"]]
                for m in client.get("/models").get_json()["models"] if m["installed"]}
    default = client.get("/models").get_json()["default"]
    assert devices()[default] == [("GPU", "GPU"), ("CPU", "CPU")]  # each device loaded the default at start-up
    job = finished(client, submit(client, device="CPU", model="second", width=64, height=64)["id"])
    assert job["status"] == "completed", job.get("error")
    now = devices()  # MAX_LOADED_MODELS=1 per device: the CPU worker switched, the GPU one kept the default
    assert now["second"] == [("CPU", "CPU")] and now[default] == [("GPU", "GPU")]
    listed = client.get("/models").get_json()
    assert [(p["device"], [m["model"] for m in p["loaded"]]) for p in listed["pools"]] == \
        [("GPU", [default]), ("CPU", ["second"])]
    assert [p["device"] for p in client.get("/health").get_json()["models"]["pools"]] == ["GPU", "CPU"]
