"""sdedge: a Stable Diffusion server for edge devices, built on OpenVINO."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from flask import Flask

    from sdedge.config import Settings


def create_app(settings: Settings | None = None, **kwargs: Any) -> Flask:
    """The app factory (imported lazily so `import sdedge` stays light); see sdedge.app."""
    from sdedge.app import create_app as factory

    return factory(settings, **kwargs)


__all__ = ["__version__", "create_app"]
