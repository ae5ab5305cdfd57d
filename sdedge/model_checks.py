"""A request checked against its model's family: what the family cannot do is a 400, what it ignores is dropped.

- A mode the family lacks (text-to-image on an inpainting model, inpainting on FLUX.2): 400.
- A width or height that is not a multiple of the family's (16 for SD3 and FLUX): 400.
- A negative prompt on a family that takes none (LCM, FLUX): dropped, and the job says so in `adjusted`
  (A1111 and OpenAI clients send one by habit; genai would raise on it).
- A sampler on a flow-matching family (SD3, FLUX): it runs its own scheduler ("auto"); noted the same way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sdedge.engine.params import GenerationParams
from sdedge.engine.loader import EngineLoader
from sdedge.errors import Conflict, InvalidRequest, ModelError, detail
from sdedge.model_library import ModelEntry
from sdedge.request_schemas import GenerateRequest


def checked_entry(loader: EngineLoader, mode: str, parsed: GenerateRequest) -> ModelEntry:
    """The local model a request names, checked: it runs the mode, is installed (or fetched for the job), and
    takes the request's images."""
    entry = loader.library.resolve(parsed.model)
    check_mode(entry, mode)
    if not loader.settings.use_mocks:  # the mock engine draws for any model
        check_installed(entry, loader.settings.auto_download_models)
    if parsed.image_fields() and loader.ready and not loader.supports_image_inputs(entry.id):
        raise ModelError("this model has no VAE encoder: image-to-image, inpainting and style transfer are unavailable")
    return entry


def check_mode(entry: ModelEntry, mode: str) -> None:
    """400 when the model's family cannot run mode."""
    problem = entry.mode_problem(mode)
    if problem:
        raise InvalidRequest(problem, detail("mode", problem, "unsupported_mode", model=entry.id, modes=entry.modes()))


def check_installed(entry: ModelEntry, auto_download: bool) -> None:
    """409 when the model is not on disk and will not be fetched for the job."""
    if entry.problem:
        raise InvalidRequest(f"model {entry.id} cannot be used: {entry.problem}",
                             detail("model", entry.problem, "unsupported_model"))
    if not entry.installed and not (auto_download and entry.repo_id):
        message = (f"model {entry.id} is not installed: download it first (POST /models/{entry.id}/download or "
                   f"`sdedge models pull {entry.id}`)")
        raise Conflict(message, detail("model", message, "not_installed", model=entry.id))


def fit_params(entry: ModelEntry | None, params: GenerationParams) -> tuple[GenerationParams, list[dict[str, Any]]]:
    """The parameters the family can take, and a note for each one changed; 400 for a size it cannot take (a
    remote model, entry None, is its engine's to check)."""
    family = entry.family_info if entry else None
    if family is None:
        return params, []
    multiple = family.size_multiple
    bad = [(name, value) for name, value in (("width", params.width), ("height", params.height)) if value % multiple]
    if bad:
        problems = [detail(name, f"must be a multiple of {multiple} for {family.name} models, got {value}", "limit")
                    for name, value in bad]
        raise InvalidRequest(f"{entry.id if entry else 'model'}: width and height must be multiples of {multiple} for {family.name}", problems)
    notes: list[dict[str, Any]] = []
    if params.negative_prompt and not family.negative_prompt:
        notes.append({"field": "negative_prompt", "message": f"ignored: {family.name} takes no negative prompt"})
        params = replace(params, negative_prompt="")
    if entry is not None and entry.flow_matching and params.sampler != "auto":
        notes.append({"field": "sampler", "message": f"{params.sampler} replaced by the model's own scheduler: "
                                                     f"{family.name} runs flow matching only"})
        params = replace(params, sampler="auto")
    return params, notes
