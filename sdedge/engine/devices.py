"""Which OpenVINO devices to compile for: the requested ones that are present, else the CPU.

OPENVINO_DEVICE names one device (GPU, CPU, NPU, AUTO, GPU.1) or a list (GPU,CPU; GPU.0,GPU.1): the
server runs one worker, with its own pipelines, per device that `plan_devices` keeps. A job may ask for
a device class (CPU, GPU, NPU); `device_class` says which class a device is.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def available_devices() -> list[str]:
    """Devices OpenVINO sees on this machine."""
    import openvino as ov

    return list(ov.Core().available_devices)


def device_class(device: str) -> str:
    """The class a job can ask for: GPU.1 -> GPU, CPU -> CPU (the mock engine's "mock" has none: "")."""
    name = device.split(".")[0].upper()
    return name if name in ("CPU", "GPU", "NPU") else ""


def compile_device(device: str) -> str:
    """The OpenVINO device name handed to compile() for device: itself.

    The one place that turns our device into OpenVINO's, so tests without a GPU can pretend one exists
    (mocked discovery) and still compile that worker's static pipelines on the CPU.
    """
    return device


def _present(requested: str, devices: list[str]) -> str | None:
    """The device OpenVINO would use for requested, when there is one (GPU with only GPU.0 listed: GPU.0)."""
    if requested == "CPU" or requested in devices:
        return requested
    if "." not in requested:
        return next((d for d in devices if d.split(".")[0] == requested), None)
    return None


def pick_device(requested: str) -> str:
    """The device to compile for: the requested one when present, else CPU (logged once)."""
    devices = available_devices()
    if requested == "AUTO":
        return next((d for d in devices if d.startswith("GPU")), "CPU")
    if requested == "CPU" or requested in devices:
        return requested
    if "." not in requested and _present(requested, devices):
        return requested  # "GPU" while OpenVINO lists GPU.0: OpenVINO's default GPU
    log.warning("OpenVINO device %s is not available (found %s); falling back to CPU",
                requested, ", ".join(devices) or "none")
    return "CPU"


def plan_devices(requested: list[str]) -> list[str]:
    """One entry per worker to run: a single device as asked (it falls back to CPU when missing); from a
    list, the devices present (a missing one is left out with a warning: falling back would put two
    workers on the same cores), or the CPU when none is."""
    if len(requested) == 1:
        return list(requested)
    devices = available_devices()
    kept: list[str] = []
    for device in requested:
        found = _present(device, devices)
        if found is None:
            log.warning("OpenVINO device %s is not available (found %s); no worker for it",
                        device, ", ".join(devices) or "none")
        elif device not in kept:
            kept.append(device)
    return kept or ["CPU"]
