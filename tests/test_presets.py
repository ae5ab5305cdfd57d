"""sdedge.presets: fast, balanced and quality per family, and what each needs (pure, no runtime)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from sdedge.families import FAMILIES, FamilyId, detect_family
from sdedge.presets import PresetUnavailable, choose, find_lcm_lora, presets_for, tiny_decoder_installed

FIXTURES = Path(__file__).parent / "fixtures"
LORAS = FIXTURES / "loras"
SD = detect_family(FIXTURES / "tiny-sd-int8-ov")


@pytest.fixture
def lcm_dir(tmp_path: Path) -> Path:
    shutil.copy(LORAS / "tiny-lcm-layout.safetensors", tmp_path / "lcm-lora-sdv1-5.safetensors")
    return tmp_path


def test_sd15_fast_is_lcm_lora_lcm_sampler_4_steps_guidance_1(lcm_dir: Path) -> None:
    fast = choose("fast", SD, lcm_dir, tiny_installed=True)
    assert (fast.steps, fast.guidance_scale, fast.sampler, fast.decoder) == (4, 1.0, "lcm", "tiny")
    assert fast.loras == (("lcm-lora-sdv1-5", 1.0),) and "LoRA latent-consistency/lcm-lora-sdv1-5" in fast.needs
    assert choose("fast", SD, lcm_dir, tiny_installed=False).decoder == "full"


def test_sd15_fast_without_the_lcm_lora_says_where_to_get_it(tmp_path: Path) -> None:
    fast = next(p for p in presets_for(SD, tmp_path, True) if p.name == "fast")
    assert not fast.available and "latent-consistency/lcm-lora-sdv1-5" in (fast.reason or "")
    with pytest.raises(PresetUnavailable, match=str(tmp_path / "lcm-lora-sdv1-5.safetensors")):
        choose("fast", SD, tmp_path, True)
    assert choose("balanced", SD, tmp_path, True).available


def test_lcm_models_and_one_step_families() -> None:
    lcm = choose("fast", FAMILIES[FamilyId.LCM], Path("/nonexistent"), True)
    assert (lcm.steps, lcm.guidance_scale, lcm.sampler, lcm.loras) == (4, 1.0, "lcm", ())
    turbo = replace(FAMILIES[FamilyId.SD], name="Stable Diffusion 1.x/2.x Turbo", distilled=True, default_steps=1)
    fast = choose("fast", turbo, Path("/nonexistent"), True)
    assert (fast.steps, fast.guidance_scale, fast.decoder) == (1, 0.0, "tiny")
    xl_turbo = replace(FAMILIES[FamilyId.SDXL], distilled=True)
    assert choose("fast", xl_turbo, Path("/nonexistent"), False).steps == 1


def test_every_family_has_three_presets_in_order() -> None:
    for family in FAMILIES.values():
        names = [p.name for p in presets_for(family, Path("/nonexistent"), False)]
        assert names == ["fast", "balanced", "quality"], family.id
    with pytest.raises(PresetUnavailable, match="unknown preset"):
        choose("turbo", SD, Path("/nonexistent"), False)


def test_an_sd2_model_gets_no_sd15_lcm_lora(lcm_dir: Path) -> None:
    sd2 = replace(SD, name="Stable Diffusion 2.x")
    with pytest.raises(PresetUnavailable, match="no LCM-LoRA is published"):
        choose("fast", sd2, lcm_dir, True)


def test_lcm_lora_file_names_and_the_tiny_decoder(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    shutil.copy(LORAS / "tiny-kohya.safetensors", tmp_path / "hub" / "LCM_LoRA_SD15.safetensors")
    assert find_lcm_lora(tmp_path, "sd") == "hub/LCM_LoRA_SD15" and find_lcm_lora(tmp_path, "sdxl") is None
    assert tiny_decoder_installed(FIXTURES / "tiny-sd-int8-ov") and not tiny_decoder_installed(tmp_path)
