"""The generation modes: each names its request model and its engine call, in one registry.

Adding a mode is a `Mode` member, its request model (sdedge/request_schemas.py), its engine call
(sdedge/engine/calls.py) and one `ModeSpec` here; the routes, the OpenAPI document and the page's
form (from `GET /modes`) follow from the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from sdedge.engine import calls
from sdedge.errors import InvalidRequest
from sdedge.request_schemas import (
    GenerateRequest, ImageToImageRequest, InpaintingRequest, StyleTransferRequest,
)


class Mode(str, Enum):
    """What a job does with its inputs."""

    TEXT2IMG = "text2img"
    IMG2IMG = "img2img"
    INPAINT = "inpaint"
    STYLE_TRANSFER = "style-transfer"


@dataclass(frozen=True)
class ModeSpec:
    """One mode: its label, request model and engine call."""

    mode: Mode
    label: str
    request_model: type[GenerateRequest]
    engine_call: calls.ModeCall
    stylizes: bool = False  # the engine moves the content's latent statistics to the style's first

    @property
    def image_inputs(self) -> dict[str, str]:
        """Request field -> the engine's input slot, for the images this mode takes."""
        return dict(self.request_model.IMAGE_INPUTS)


MODES: dict[Mode, ModeSpec] = {
    spec.mode: spec
    for spec in (
        ModeSpec(Mode.TEXT2IMG, "Text to image", GenerateRequest, calls.text2img),
        ModeSpec(Mode.IMG2IMG, "Image to image", ImageToImageRequest, calls.img2img),
        ModeSpec(Mode.INPAINT, "Inpainting", InpaintingRequest, calls.inpaint),
        ModeSpec(Mode.STYLE_TRANSFER, "Style transfer", StyleTransferRequest, calls.style_transfer, stylizes=True),
    )
}
MODE_NAMES: tuple[str, ...] = tuple(mode.value for mode in MODES)


def mode_spec(name: str) -> ModeSpec:
    """The mode called name, or a 400 listing the valid ones."""
    try:
        return MODES[Mode(name)]
    except ValueError:
        raise InvalidRequest(f"unknown mode {name!r}; valid: {', '.join(MODE_NAMES)}",
                             [{"field": "mode", "message": f"must be one of {', '.join(MODE_NAMES)}",
                               "type": "enum"}]) from None
