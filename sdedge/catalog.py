"""The built-in catalog: OpenVINO exports on the Hugging Face hub that sdedge knows how to run.

Each entry names the repo, the family its model_index.json declares (used only until the folder is
downloaded: from then on the family is read from the folder), an estimated download size, and the
settings recommended for it. The sizes are estimates from the models' parameter counts at int8
(1 byte per weight) or int4 (half a byte), not measured downloads; a download reports the hub's
exact byte total before it starts.

Repos listed are the ones docs/FAMILIES.md and the reference anchors name: published by the
`OpenVINO` organisation with `tokenizer/openvino_tokenizer.xml`, which openvino-genai needs. No
OpenVINO-organisation SDXL-Turbo or SD3 export is listed: none could be confirmed from here (the
SDXL-Turbo IR that FastSD CPU uses predates openvino_tokenizer). Any such folder put under
MODELS_DIR is offered like the catalog's (its family read from its model_index.json).
"""

from __future__ import annotations

from dataclasses import dataclass

from sdedge.families import FamilyId

GB = 1_000_000_000


@dataclass(frozen=True)
class Recommended:
    """Settings a model is meant to run with (None: the family's default)."""

    size: int | None = None
    steps: int | None = None
    guidance: float | None = None
    sampler: str | None = None  # ours (sdedge.samplers), e.g. "lcm"; "auto" is the model's own scheduler


@dataclass(frozen=True)
class CatalogEntry:
    """One known hub repo."""

    repo_id: str
    name: str
    description: str
    family: FamilyId  # as the repo's model_index.json declares it
    version: str
    type: str  # seed 002's "type": base, distilled or inpainting
    estimated_bytes: int
    recommended: Recommended
    aliases: tuple[str, ...] = ()  # other names clients use (seed 002 calls SD 1.5 "stable-diffusion-v1.5")

    @property
    def id(self) -> str:
        """The model id clients use: the repo's name, lower-case."""
        return model_id_for(self.repo_id)


def model_id_for(repo_or_folder: str) -> str:
    """A model id from a repo id or a folder path: its last part, lower-case."""
    return repo_or_folder.rstrip("/\\").replace("\\", "/").split("/")[-1].lower()


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry("OpenVINO/stable-diffusion-v1-5-int8-ov", "Stable Diffusion v1.5 (int8)",
                 "General purpose text-to-image model, 512x512; the server's default", FamilyId.SD, "1.5", "base",
                 int(1.1 * GB), Recommended(512, 20, 7.5, "euler_a"),
                 ("stable-diffusion-v1.5", "stable-diffusion-v1-5", "sd15", "sd-1.5")),
    CatalogEntry("OpenVINO/LCM_Dreamshaper_v7-int8-ov", "LCM Dreamshaper v7 (int8)",
                 "Latent consistency model: good images in 4 steps, no negative prompt", FamilyId.LCM, "7", "distilled",
                 int(1.1 * GB), Recommended(512, 4, 8.5, "lcm")),
    CatalogEntry("OpenVINO/dreamshaper-8-inpainting-int8-ov", "Dreamshaper 8 inpainting (int8)",
                 "Dedicated inpainting model (9-channel UNet): inpainting only", FamilyId.SD_INPAINT, "8",
                 "inpainting", int(1.1 * GB), Recommended(512, 25, 7.5, "euler_a")),
    CatalogEntry("OpenVINO/stable-diffusion-xl-base-1.0-int8-ov", "Stable Diffusion XL base 1.0 (int8)",
                 "SDXL base, 1024x1024; slower and larger than SD 1.5", FamilyId.SDXL, "1.0", "base",
                 int(3.5 * GB), Recommended(1024, 25, 5.0, "euler")),
    CatalogEntry("OpenVINO/FLUX.1-schnell-int8-ov", "FLUX.1 schnell (int8)",
                 "FLUX.1 schnell, 4 steps, no guidance and no negative prompt; needs a lot of memory", FamilyId.FLUX,
                 "1-schnell", "distilled", int(17 * GB), Recommended(1024, 4, 0.0, "auto")),
    CatalogEntry("OpenVINO/FLUX.1-schnell-int4-ov", "FLUX.1 schnell (int4)",
                 "FLUX.1 schnell with 4-bit weights: half the memory of int8, a little lower quality", FamilyId.FLUX,
                 "1-schnell", "distilled", int(9 * GB), Recommended(1024, 4, 0.0, "auto")),
)
CATALOG_BY_ID: dict[str, CatalogEntry] = {entry.id: entry for entry in CATALOG}
