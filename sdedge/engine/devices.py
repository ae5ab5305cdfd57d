"""Which OpenVINO device to compile for: the requested one when present, else the CPU."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def available_devices() -> list[str]:
    """Devices OpenVINO sees on this machine."""
    import openvino as ov

    return list(ov.Core().available_devices)


def pick_device(requested: str) -> str:
    """The device to compile for: the requested one when present, else CPU (logged once)."""
    devices = available_devices()
    if requested == "AUTO":
        return next((d for d in devices if d.startswith("GPU")), "CPU")
    if requested == "CPU" or requested in devices:
        return requested
    log.warning("OpenVINO device %s is not available (found %s); falling back to CPU",
                requested, ", ".join(devices) or "none")
    return "CPU"
