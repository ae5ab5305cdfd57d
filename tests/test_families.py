"""Model families: detect_family on fixtures and hand-written configs; every family's modes through genai."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sdedge.families import FAMILIES, Family, FamilyId, Guidance, Mode, UnsupportedModel, detect_family, unpack_latent
from sdedge.rng import genai_generator

FIXTURES = Path(__file__).parent / "fixtures"
MODELS = {
    FamilyId.SD: FIXTURES / "tiny-sd-int8-ov",
    FamilyId.SDXL: FIXTURES / "tiny-sdxl-int8-ov",
    FamilyId.SD3: FIXTURES / "tiny-sd3-int8-ov",
    FamilyId.FLUX: FIXTURES / "tiny-flux-int8-ov",
}
SIZE, STEPS, SEED = 64, 2, 1234


# ---- detect_family on hand-written folders -------------------------------------------------------


def write_model(root: Path, index: dict[str, Any], **configs: dict[str, Any]) -> Path:
    """A model folder with this model_index.json and component configs ("unet", "scheduler", ...)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    names = {"scheduler": "scheduler_config.json"}
    for component, config in configs.items():
        (root / component).mkdir(exist_ok=True)
        (root / component / names.get(component, "config.json")).write_text(json.dumps(config), encoding="utf-8")
    return root


VAE4 = {"latent_channels": 4, "block_out_channels": [128, 256, 512, 512], "scaling_factor": 0.18215}
VAE16 = {"latent_channels": 16, "block_out_channels": [128, 256, 512, 512], "scaling_factor": 0.3611, "shift_factor": 0.1159}


def test_lcm_by_class_name(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", {"_class_name": "LatentConsistencyModelPipeline"},
                         unet={"in_channels": 4, "sample_size": 96, "time_cond_proj_dim": 256},
                         scheduler={"_class_name": "LCMScheduler"}, vae_decoder=VAE4)  # fmt: skip
    family = detect_family(folder)
    assert family.id is FamilyId.LCM and family.guidance is Guidance.EMBEDDED
    assert not family.negative_prompt and family.default_steps == 4 and family.sampler == "LCM"
    assert family.default_size == 768 and family.modes == frozenset(Mode)


def test_lcm_unet_under_the_plain_sd_class(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", {"_class_name": "StableDiffusionPipeline"},
                         unet={"in_channels": 4, "sample_size": 64, "time_cond_proj_dim": 256})  # fmt: skip
    assert detect_family(folder).id is FamilyId.LCM


def test_nine_channel_unet_is_inpainting_only(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", {"_class_name": "StableDiffusionInpaintPipeline"},
                         unet={"in_channels": 9, "sample_size": 64}, vae_decoder=VAE4)  # fmt: skip
    family = detect_family(folder)
    assert family.id is FamilyId.SD_INPAINT and family.modes == {Mode.INPAINT} and not family.derived_modes
    # published dreamshaper inpainting exports keep the plain class name: the UNet decides
    plain = write_model(tmp_path / "p", {"_class_name": "StableDiffusionPipeline"}, unet={"in_channels": 9})
    assert detect_family(plain).id is FamilyId.SD_INPAINT


def test_sdxl_turbo_from_its_scheduler(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", {"_class_name": "StableDiffusionXLPipeline"},
                         unet={"in_channels": 4, "sample_size": 64},
                         scheduler={"_class_name": "EulerAncestralDiscreteScheduler", "timestep_spacing": "trailing"},
                         vae_decoder={**VAE4, "scaling_factor": 0.13025})  # fmt: skip
    family = detect_family(folder)
    assert family.id is FamilyId.SDXL and family.distilled and "Turbo" in family.name
    assert (family.default_steps, family.default_guidance, family.default_size) == (1, 0.0, 512)
    assert family.sampler == "EULER_ANCESTRAL_DISCRETE" and family.vae_scaling_factor == 0.13025


def test_sdxl_inpainting(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", {"_class_name": "StableDiffusionXLInpaintPipeline"}, unet={"in_channels": 9})
    assert detect_family(folder).modes == {Mode.INPAINT}


def test_sd2_named_from_cross_attention_width(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", {"_class_name": "StableDiffusionPipeline"},
                         unet={"in_channels": 4, "sample_size": 96, "cross_attention_dim": 1024})  # fmt: skip
    family = detect_family(folder)
    assert family.id is FamilyId.SD and "2.x" in family.name and family.default_size == 768


def test_flux_dev_has_distilled_guidance(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "m", {"_class_name": "FluxPipeline"},
                         transformer={"in_channels": 64, "guidance_embeds": True}, vae_decoder=VAE16)  # fmt: skip
    family = detect_family(folder)
    assert family.guidance is Guidance.DISTILLED and (family.default_steps, family.default_guidance) == (28, 3.5)
    assert family.default_size == 1024 and family.latent_packed and not family.negative_prompt


def test_flux_fill_and_flux_inpaint_classes_only_inpaint(tmp_path: Path) -> None:
    fill = detect_family(write_model(tmp_path / "f", {"_class_name": "FluxFillPipeline"}, transformer={"in_channels": 384}))
    assert fill.id is FamilyId.FLUX_FILL and fill.modes == {Mode.INPAINT} and fill.default_guidance == 30.0
    inpaint = detect_family(write_model(tmp_path / "i", {"_class_name": "FluxInpaintPipeline"}, transformer={}))
    assert inpaint.id is FamilyId.FLUX and inpaint.modes == {Mode.INPAINT}


@pytest.mark.parametrize(("class_name", "family_id"), [("Flux2KleinPipeline", FamilyId.FLUX2_KLEIN),
                                                        ("ZImagePipeline", FamilyId.Z_IMAGE),
                                                        ("QwenImagePipeline", FamilyId.QWEN_IMAGE)])  # fmt: skip
def test_newer_families_have_no_inpainting(tmp_path: Path, class_name: str, family_id: FamilyId) -> None:
    family = detect_family(write_model(tmp_path / "m", {"_class_name": class_name}))
    assert family.id is family_id and family.modes == {Mode.TEXT2IMG, Mode.IMG2IMG}
    assert family.build_mode is Mode.IMG2IMG and family.samplers == ("FLOW_MATCH_EULER_DISCRETE",)


def test_sd3_without_t5_takes_77_tokens(tmp_path: Path) -> None:
    index = {"_class_name": "StableDiffusion3Pipeline", "text_encoder_3": [None, None], "tokenizer_3": [None, None]}
    family = detect_family(write_model(tmp_path / "m", index, transformer={"sample_size": 128, "patch_size": 2}))
    assert family.id is FamilyId.SD3 and family.max_sequence_length == 77 and family.size_multiple == 16


def test_the_folder_name_is_never_used(tmp_path: Path) -> None:
    folder = write_model(tmp_path / "FLUX.1-schnell-int8-ov", {"_class_name": "StableDiffusionPipeline"}, unet={})
    assert detect_family(folder).id is FamilyId.SD


@pytest.mark.parametrize("index", [None, {"_class_name": "StableDiffusionUpscalePipeline"}, {"no": "class"}])
def test_unsupported_folders_raise(tmp_path: Path, index: dict[str, Any] | None) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    if index is not None:
        (folder / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    with pytest.raises(UnsupportedModel):
        detect_family(folder)


def test_broken_json_raises_unsupported(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model_index.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UnsupportedModel, match="JSON"):
        detect_family(folder)


def test_every_family_is_consistent() -> None:
    for family in FAMILIES.values():
        assert family.build_mode in family.modes
        assert family.sampler in family.samplers
        assert family.latent_channels in (4, 16, 32)
        assert family.preview_rgb is None or len(family.preview_rgb) == family.latent_channels


def test_unpack_latent_inverts_genai_packing() -> None:
    family = FAMILIES[FamilyId.FLUX]
    latent = np.arange(1 * 16 * 4 * 6, dtype=np.float32).reshape(1, 16, 4, 6)  # [B, C, h, w] for 32x48 px
    packed = latent.reshape(1, 16, 2, 2, 3, 2).transpose(0, 2, 4, 1, 3, 5).reshape(1, 6, 64)  # genai's pack_latents
    assert np.array_equal(unpack_latent(packed, family, width=48, height=32), latent)
    sd = FAMILIES[FamilyId.SD]
    assert unpack_latent(latent[:, :4], sd, 48, 32).shape == (1, 4, 4, 6)


# ---- the fixtures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("family_id", "path"), MODELS.items(), ids=[f.value for f in MODELS])
def test_detect_family_on_fixture(family_id: FamilyId, path: Path) -> None:
    family = detect_family(path)
    assert family.id is family_id
    assert family.default_size == (1024 if family_id is FamilyId.FLUX else SIZE)
    assert family.latent_channels == (16 if family_id in (FamilyId.SD3, FamilyId.FLUX) else 4)


def test_fixtures_are_small() -> None:
    for path in MODELS.values():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        assert size < 5_000_000, f"{path.name} is {size / 1e6:.1f} MB"


class Pipes:
    """One genai pipeline built per the family's build_mode, the other modes derived from it."""

    def __init__(self, model_dir: Path) -> None:
        import openvino_genai as ov_genai

        self.family = detect_family(model_dir)
        self.dir = model_dir
        builders = {Mode.INPAINT: ov_genai.InpaintingPipeline, Mode.IMG2IMG: ov_genai.Image2ImagePipeline,
                    Mode.TEXT2IMG: ov_genai.Text2ImagePipeline}  # fmt: skip
        base = builders[self.family.build_mode](str(model_dir), "CPU")
        self.pipes: dict[Mode, Any] = {self.family.build_mode: base}
        for mode in self.family.derived_modes:
            derived = builders[mode](base)
            if self.family.reset_scheduler:  # genai 2026.4: SD3/FLUX copies have no scheduler (segfault)
                derived.set_scheduler(ov_genai.Scheduler.from_config(str(model_dir / "scheduler" / "scheduler_config.json")))
            self.pipes[mode] = derived

    def run(self, mode: Mode, seed: int = SEED, **kw: Any) -> np.ndarray:
        """Generate at 64x64 in STEPS steps and return the uint8 NHWC image."""
        import openvino as ov

        args: list[Any] = ["a red apple"]
        if mode is not Mode.TEXT2IMG:
            args.append(ov.Tensor(init_image()))
            kw.setdefault("strength", 0.7)
        if mode is Mode.INPAINT:
            args.append(ov.Tensor(mask_image()))
        kw.setdefault("guidance_scale", 1.0)
        out = self.pipes[mode].generate(*args, width=SIZE, height=SIZE, num_inference_steps=STEPS,
                                        generator=genai_generator(seed), **kw)  # fmt: skip
        return np.array(out.data)


def init_image() -> np.ndarray:
    """A fixed colourful 64x64 RGB picture (NHWC uint8)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    return np.stack([x * 4, y * 4, (x + y) * 2], axis=-1).astype(np.uint8)[None]


def mask_image() -> np.ndarray:
    """White square in the middle: the region to repaint."""
    mask = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    mask[:, 16:48, 16:48] = 255
    return mask


@pytest.fixture(scope="module")
def pipes() -> Iterator[Callable[[FamilyId], Pipes]]:
    """Compiled pipelines per fixture, built on first use and shared by this module's tests."""
    cache: dict[FamilyId, Pipes] = {}

    def get(family_id: FamilyId) -> Pipes:
        if family_id not in cache:
            cache[family_id] = Pipes(MODELS[family_id])
        return cache[family_id]

    yield get
    cache.clear()


CASES = [(f, m) for f in MODELS for m in Mode]  # all four fixture families offer all three modes


@pytest.mark.parametrize(("family_id", "mode"), CASES, ids=[f"{f.value}-{m.value}" for f, m in CASES])
def test_every_mode_runs_and_repeats_byte_for_byte(pipes: Callable[[FamilyId], Pipes], family_id: FamilyId,
                                                    mode: Mode) -> None:  # fmt: skip
    p = pipes(family_id)
    assert mode in p.family.modes
    first = p.run(mode)
    assert first.shape == (1, SIZE, SIZE, 3) and first.dtype == np.uint8
    assert first.std() > 1.0, "a flat image: the pipeline did not run"
    assert np.array_equal(first, p.run(mode)), "same seed and settings gave different bytes"
    assert not np.array_equal(first, p.run(mode, seed=SEED + 1)), "the seed did not change the image"


def test_families_give_different_images_for_one_seed(pipes: Callable[[FamilyId], Pipes]) -> None:
    images = {f: pipes(f).run(Mode.TEXT2IMG) for f in MODELS}
    for a in MODELS:
        for b in MODELS:
            if a.value < b.value:
                assert not np.array_equal(images[a], images[b]), f"{a.value} and {b.value} gave the same image"


def test_derived_flow_pipelines_match_ones_built_from_the_folder(pipes: Callable[[FamilyId], Pipes]) -> None:
    import openvino_genai as ov_genai

    p = pipes(FamilyId.FLUX)
    direct = ov_genai.Text2ImagePipeline(str(p.dir), "CPU")
    out = direct.generate("a red apple", width=SIZE, height=SIZE, num_inference_steps=STEPS, guidance_scale=1.0,
                          generator=genai_generator(SEED))  # fmt: skip
    assert np.array_equal(np.array(out.data), p.run(Mode.TEXT2IMG))


def fresh_text2img(family_id: FamilyId) -> Any:
    """A Text2ImagePipeline of its own (SD3's T5 keeps the first call's batch: see the T5 test)."""
    import openvino_genai as ov_genai

    return ov_genai.Text2ImagePipeline(str(MODELS[family_id]), "CPU")


def generate(pipe: Any, seed: int = SEED, **kw: Any) -> np.ndarray:
    """A 64x64 text-to-image run of pipe."""
    out = pipe.generate("a red apple", width=SIZE, height=SIZE, num_inference_steps=STEPS,
                        generator=genai_generator(seed), **kw)  # fmt: skip
    return np.array(out.data)


@pytest.mark.parametrize("family_id", [FamilyId.SDXL, FamilyId.SD3])
def test_cfg_families_take_a_negative_prompt_above_guidance_one(family_id: FamilyId) -> None:
    pipe = fresh_text2img(family_id)
    family = detect_family(MODELS[family_id])
    assert family.negative_prompt and family.guidance is Guidance.CFG
    with_negative = generate(pipe, guidance_scale=4.0, negative_prompt="blurry")
    assert not np.array_equal(with_negative, generate(pipe, guidance_scale=4.0))


@pytest.mark.parametrize("family_id", list(MODELS), ids=[f.value for f in MODELS])
def test_a_negative_prompt_at_guidance_one_raises(pipes: Callable[[FamilyId], Pipes], family_id: FamilyId) -> None:
    with pytest.raises(RuntimeError, match="Guidance scale <= 1.0 ignores negative prompt"):
        pipes(family_id).run(Mode.TEXT2IMG, guidance_scale=1.0, negative_prompt="blurry")


def test_flux_refuses_a_negative_prompt_and_ignores_guidance(pipes: Callable[[FamilyId], Pipes]) -> None:
    p = pipes(FamilyId.FLUX)
    assert not p.family.negative_prompt and p.family.guidance is Guidance.NONE
    with pytest.raises(RuntimeError, match="Negative prompt is not used by FluxPipeline"):
        p.run(Mode.TEXT2IMG, guidance_scale=4.0, negative_prompt="blurry")
    assert np.array_equal(p.run(Mode.TEXT2IMG, guidance_scale=1.0), p.run(Mode.TEXT2IMG, guidance_scale=7.0))


def test_t5_keeps_the_first_calls_batch_and_length() -> None:
    """genai 2026.4.1 (t5_encoder_model.cpp): the first generate() fixes T5's input shape for good."""
    assert detect_family(MODELS[FamilyId.SD3]).t5_encoder
    pipe = fresh_text2img(FamilyId.SD3)
    generate(pipe, guidance_scale=4.0)  # CFG: T5 input is now [2, 256]
    with pytest.raises(RuntimeError):
        generate(pipe, guidance_scale=1.0)  # batch 1 no longer fits
    with pytest.raises(RuntimeError, match="max_sequence_length"):
        generate(pipe, guidance_scale=4.0, max_sequence_length=128)
    assert generate(pipe, guidance_scale=4.0).std() > 1.0  # the first call's settings still work


def test_sd3_rejects_sizes_off_its_16_pixel_grid(pipes: Callable[[FamilyId], Pipes]) -> None:
    p = pipes(FamilyId.SD3)
    assert p.family.size_multiple == 16
    with pytest.raises(RuntimeError, match="divisible"):
        p.pipes[Mode.TEXT2IMG].generate("x", width=72, height=72, num_inference_steps=1, generator=genai_generator(0))


@pytest.mark.parametrize("family_id", list(MODELS), ids=[f.value for f in MODELS])
def test_step_latents_unpack_to_the_family_layout(pipes: Callable[[FamilyId], Pipes], family_id: FamilyId) -> None:
    p = pipes(family_id)
    shapes: list[tuple[int, ...]] = []

    def callback(step: int, num_steps: int, latent: Any) -> bool:
        shapes.append(unpack_latent(np.array(latent.data), p.family, SIZE, SIZE).shape)
        return False

    p.run(Mode.TEXT2IMG, callback=callback)
    # genai's callback thread may drop the last steps when it lags (threaded_callback.hpp: end() stops
    # without draining the queue), and PNDM calls back once more than asked: count loosely.
    assert 1 <= len(shapes) <= STEPS + 1
    assert set(shapes) == {(1, p.family.latent_channels, SIZE // 8, SIZE // 8)}


def test_sd3_runs_without_t5(tmp_path: Path) -> None:
    import openvino_genai as ov_genai

    folder = tmp_path / "sd3-no-t5"
    shutil.copytree(MODELS[FamilyId.SD3], folder)
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    index.update(text_encoder_3=[None, None], tokenizer_3=[None, None])
    (folder / "model_index.json").write_text(json.dumps(index), encoding="utf-8")
    shutil.rmtree(folder / "text_encoder_3")
    shutil.rmtree(folder / "tokenizer_3")
    family: Family = detect_family(folder)
    assert family.id is FamilyId.SD3 and family.max_sequence_length == 77 and not family.t5_encoder
    pipe = ov_genai.Text2ImagePipeline(str(folder), "CPU")
    out = pipe.generate("a red apple", width=SIZE, height=SIZE, num_inference_steps=STEPS, guidance_scale=1.0,
                        generator=genai_generator(SEED))  # fmt: skip
    assert np.array(out.data).std() > 1.0
    # without T5 the CFG batch is not frozen: the same pipeline now runs with guidance
    assert generate(pipe, guidance_scale=4.0, negative_prompt="blurry").std() > 1.0


# ---- preview factors --------------------------------------------------------------------------------


def _fit_script() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("fit_preview_factors", Path(__file__).parents[1] / "scripts" / "fit_preview_factors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_preview_fit_recovers_a_linear_map() -> None:
    fit = _fit_script().fit
    rng = np.random.default_rng(0)
    weights, bias = rng.normal(size=(16, 3)), np.array([0.1, -0.2, 0.3])
    latents = rng.normal(size=(4, 16, 8, 8)).astype(np.float32)
    rgb = (np.einsum("nchw,cd->ndhw", latents, weights) + bias[None, :, None, None]).astype(np.float32)
    result = fit(latents, rgb)
    assert np.allclose(result["latent_rgb"], weights, atol=1e-3) and np.allclose(result["bias"], bias, atol=1e-3)
    assert min(result["r2"]) > 0.999


def test_preview_fit_runs_on_a_fixture_vae() -> None:
    result = _fit_script().fit_model(MODELS[FamilyId.FLUX])
    assert len(result["latent_rgb"]) == 16 and all(len(row) == 3 for row in result["latent_rgb"])
