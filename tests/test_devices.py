"""Device discovery and planning: which devices of OPENVINO_DEVICE get a worker (OpenVINO's list mocked)."""

from __future__ import annotations

import logging

import pytest

from sdedge.config import Settings
from sdedge.engine import devices


@pytest.fixture
def found(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    present: list[str] = ["CPU"]
    monkeypatch.setattr(devices, "available_devices", lambda: list(present))
    return present


def test_device_classes() -> None:
    assert [devices.device_class(d) for d in ("CPU", "GPU", "GPU.1", "NPU", "mock", "AUTO")] == \
        ["CPU", "GPU", "GPU", "NPU", "", ""]


@pytest.mark.parametrize("present, requested, planned", [
    (["CPU", "GPU"], ["GPU", "CPU"], ["GPU", "CPU"]),
    (["CPU", "GPU", "NPU"], ["GPU", "NPU"], ["GPU", "NPU"]),
    (["CPU", "GPU.0", "GPU.1"], ["GPU.0", "GPU.1"], ["GPU.0", "GPU.1"]),
    (["CPU", "GPU.0", "GPU.1"], ["GPU", "CPU"], ["GPU", "CPU"]),  # GPU is OpenVINO's default GPU (GPU.0)
    (["CPU", "GPU"], ["GPU", "NPU"], ["GPU"]),  # a missing device gets no worker
    (["CPU"], ["GPU", "NPU"], ["CPU"]),  # none present: the CPU
    (["CPU"], ["GPU"], ["GPU"]),  # a single device keeps its own fallback (the engine logs it)
    (["CPU"], ["AUTO"], ["AUTO"]),
])
def test_plan_devices(found: list[str], present: list[str], requested: list[str], planned: list[str]) -> None:
    found[:] = present
    assert devices.plan_devices(requested) == planned


def test_a_missing_listed_device_is_logged(found: list[str], caplog: pytest.LogCaptureFixture) -> None:
    found[:] = ["CPU", "GPU"]
    with caplog.at_level(logging.WARNING):
        devices.plan_devices(["GPU", "NPU", "CPU"])
    assert "OpenVINO device NPU is not available (found CPU, GPU); no worker for it" in caplog.text


def test_pick_device_takes_gpu_for_an_indexed_gpu(found: list[str]) -> None:
    found[:] = ["CPU", "GPU.0", "GPU.1"]
    assert devices.pick_device("GPU") == "GPU" and devices.pick_device("GPU.1") == "GPU.1"
    assert devices.pick_device("GPU.2") == "CPU" and devices.pick_device("AUTO") == "GPU.0"


@pytest.mark.parametrize("value, listed", [("gpu, cpu", ["GPU", "CPU"]), ("GPU.0,GPU.1", ["GPU.0", "GPU.1"]),
                                           ("AUTO", ["AUTO"]), ("npu", ["NPU"])])
def test_openvino_device_setting_takes_a_list(value: str, listed: list[str]) -> None:
    settings = Settings(_env_file=None, openvino_device=value)  # type: ignore[call-arg]
    assert settings.device_list == listed and settings.openvino_device == ",".join(listed)


@pytest.mark.parametrize("value, message", [("GPU,AUTO", "AUTO picks one device"), ("GPU,GPU", "twice"),
                                            ("GPU,TPU", "must be one of"), (" , ", "must name a device")])
def test_openvino_device_setting_refuses_bad_lists(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(_env_file=None, openvino_device=value)  # type: ignore[call-arg]
