"""The samplers sdedge runs: our names, openvino-genai's scheduler types, AUTOMATIC1111's names.

Adding a sampler is one entry in `SAMPLERS`. genai has no DPM++ family, and in current releases
LMS_DISCRETE is a deprecated alias that runs DDIM; the note says so wherever samplers are listed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sampler:
    """One sampler: how clients name it and which genai scheduler runs it."""

    name: str  # ours, as requests and responses spell it
    genai_type: str  # openvino_genai.Scheduler.Type member
    a1111_name: str  # AUTOMATIC1111's display name
    aliases: tuple[str, ...] = ()  # other spellings accepted in requests
    note: str | None = None
    # Steps and guidance that beat the server's defaults: LCM converges in a few steps and needs no
    # classifier-free guidance, which also halves each step (batch 1 instead of 2).
    default_steps: int | None = None
    default_guidance: float | None = None


SAMPLERS: dict[str, Sampler] = {
    sampler.name: sampler
    for sampler in (
        Sampler("euler_a", "EULER_ANCESTRAL_DISCRETE", "Euler a", ("k_euler_a", "euler_ancestral")),
        Sampler("euler", "EULER_DISCRETE", "Euler"),
        Sampler("ddim", "DDIM", "DDIM"),
        Sampler("pndm", "PNDM", "PLMS", ("plms",)),
        Sampler("lms", "LMS_DISCRETE", "LMS", note="runs as DDIM: openvino-genai deprecated LMS_DISCRETE"),
        Sampler("lcm", "LCM", "LCM", default_steps=4, default_guidance=1.0),
        Sampler("auto", "AUTO", "Automatic", note="the model's own scheduler"),
    )
}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)

# A1111 samplers we lack run the first of ours whose name they contain ("DPM++ 2M" -> none -> euler_a).
_CLOSEST: tuple[tuple[str, str], ...] = (("euler a", "euler_a"), ("euler", "euler"), ("ddim", "ddim"),
                                         ("plms", "pndm"), ("lcm", "lcm"), ("lms", "lms"))
FALLBACK_SAMPLER = "euler_a"

_BY_SPELLING: dict[str, str] = {
    spelling: sampler.name for sampler in SAMPLERS.values() for spelling in (sampler.name, *sampler.aliases)
}
_BY_A1111_NAME: dict[str, str] = {sampler.a1111_name.lower(): sampler.name for sampler in SAMPLERS.values()}


def canonical_sampler(name: str) -> str | None:
    """Our name for a sampler spelled any accepted way, or None when it is not one we run."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    return _BY_SPELLING.get(key)


def from_a1111(name: str | None, default: str) -> tuple[str, bool]:
    """Our sampler for an A1111 name, and whether it is that sampler (False: the closest we run)."""
    if not name:
        return default, True
    ours = _BY_A1111_NAME.get(name.strip().lower()) or canonical_sampler(name)
    if ours:
        return ours, True
    lowered = name.lower()
    return next((ours for key, ours in _CLOSEST if key in lowered), FALLBACK_SAMPLER), False


def a1111_name(name: str) -> str:
    """AUTOMATIC1111's name for one of ours (unknown names pass through)."""
    sampler = SAMPLERS.get(name)
    return sampler.a1111_name if sampler else name


def sampler_defaults(name: str, steps: int, guidance: float) -> tuple[int, float]:
    """Steps and guidance for a request that gives neither: the sampler's own, else the server's."""
    sampler = SAMPLERS[name]
    return sampler.default_steps or steps, guidance if sampler.default_guidance is None else sampler.default_guidance
