"""sdedge.lora_adapters: LoRA files rewritten for openvino-genai, the filler, the selector; and pins of
openvino-genai 2026.4's own LoRA behaviour that the rewriting works around (so an upgrade shows)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from sdedge.lora_adapters import (
    AdapterCache, LoraSelector, ModelLayers, filler_tensors, prepare_lora, read_tensors, safetensors_bytes,
)
from sdedge.loras import LoraInvalid, LoraMismatch, read_header
from sdedge.rng import genai_generator

FIXTURES = Path(__file__).parent / "fixtures"
LORAS = FIXTURES / "loras"
MODEL = FIXTURES / "tiny-sd-int8-ov"

g = pytest.importorskip("openvino_genai")


@pytest.fixture(scope="module")
def layers() -> ModelLayers:
    return ModelLayers.from_model(MODEL)


def lora_file(tmp_path: Path, layers: ModelLayers, keep: Callable[[str], bool], key: Callable[[str, Any], str],
              seed: int = 0, alpha: float | None = None, rank: int = 4, name: str = "x") -> Path:
    """A random LoRA on the layers `keep` selects, named by `key(part, layer)` + .lora_down/.lora_up."""
    rng, tensors = np.random.default_rng(seed), {}
    for part, table in layers.parts.items():
        for layer in table.values():
            if keep(layer.path) and not any(k > 1 for k in layer.kernel):
                base = key(part, layer)
                tensors[base + ".lora_down.weight"] = (rng.standard_normal((rank, layer.inp)) / np.sqrt(layer.inp)
                                                       ).astype(np.float32)
                tensors[base + ".lora_up.weight"] = (rng.standard_normal((layer.out, rank)) * 3).astype(np.float32)
                if alpha is not None:
                    tensors[base + ".alpha"] = np.array(alpha, np.float32)
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(safetensors_bytes(tensors))
    return path


def kohya_key(part: str, layer: Any) -> str:
    return ("lora_unet_" if part == "unet" else "lora_te_") + layer.path.replace(".", "_")


def image(pipe: Any, **kwargs: Any) -> bytes:
    out = pipe.generate("a cat", width=64, height=64, num_inference_steps=3, generator=genai_generator(3), **kwargs)
    return bytes(np.asarray(out.data).tobytes())


def config(*pairs: tuple[Any, float]) -> Any:
    c = g.AdapterConfig()
    for adapter, weight in pairs:
        c.add(adapter, weight)
    return c


# -- the rewriting (no inference) --------------------------------------------------------------
def test_model_layers_come_from_the_ir(layers: ModelLayers) -> None:
    unet, text = layers.parts["unet"], layers.parts["text_encoder"]
    q = unet["down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"]
    assert (q.path, q.inp, q.out, q.kernel) == \
        ("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 32, 32, ())
    assert unet["down_blocks_0_resnets_0_conv1"].kernel == (3, 3)
    assert unet["down_blocks_1_resnets_0_conv_shortcut"].kernel == (1, 1)
    assert len(text) == 12 and layers.layers_per_block == 1


def test_every_layout_maps_onto_the_same_layers(tmp_path: Path, layers: ModelLayers) -> None:
    attn = lambda path: ".attn1." in path  # noqa: E731
    keys = {
        "kohya": kohya_key,
        "peft": lambda part, layer: f"{part}.{layer.path}".replace(".lora", ""),
        "bare-diffusers": lambda part, layer: layer.path,
        "attn-procs": lambda part, layer: "unet." + layer.path.replace(".to_out.0", ".to_out").rsplit(".", 1)[0]
        + ".processor." + layer.path.replace(".to_out.0", ".to_out").rsplit(".", 1)[1] + "_lora",
    }
    applied = {}
    for name, key in keys.items():
        path = lora_file(tmp_path, layers, lambda p: attn(p) and "text_model" not in p, key, name=name)
        if name == "peft":  # PEFT names end in lora_A/lora_B
            tensors = read_tensors(path, name)
            tensors = {k.replace(".lora_down.weight", ".lora_A.weight").replace(".lora_up.weight", ".lora_B.weight"): v
                       for k, v in tensors.items()}
            path.write_bytes(safetensors_bytes(tensors))
        if name == "attn-procs":
            tensors = {k.replace("_lora.lora_down.", "_lora.down.").replace("_lora.lora_up.", "_lora.up."): v
                       for k, v in read_tensors(path, name).items()}
            path.write_bytes(safetensors_bytes(tensors))
        prepared = prepare_lora(path, name, layers)
        assert not prepared.unmatched and not prepared.skipped, name
        applied[name] = prepared.applied
    assert len(set(applied.values())) == 1 and len(applied["kohya"]) == 16


def test_kohya_sdxl_block_names_map_to_diffusers_names(tmp_path: Path) -> None:
    from sdedge.lora_adapters import _sgm_to_diffusers

    assert _sgm_to_diffusers("input_blocks_4_1_transformer_blocks_0_attn1_to_q", 2) == \
        "down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
    assert _sgm_to_diffusers("input_blocks_3_0_op", 2) == "down_blocks_0_downsamplers_0_conv"
    assert _sgm_to_diffusers("middle_block_1_proj_in", 2) == "mid_block_attentions_0_proj_in"
    assert _sgm_to_diffusers("output_blocks_5_2_conv", 2) == "up_blocks_1_upsamplers_0_conv"
    assert _sgm_to_diffusers("output_blocks_4_0_emb_layers_1", 2) == "up_blocks_1_resnets_1_time_emb_proj"
    assert _sgm_to_diffusers("down_blocks_0_resnets_0_conv1", 2) == "down_blocks_0_resnets_0_conv1"


def test_an_sdxl_lora_reaches_the_sdxl_exports_wrapped_unet_layers() -> None:
    """optimum-intel's SDXL export names UNet layers "model.down_blocks...": kohya's names still match."""
    prepared = prepare_lora(LORAS / "tiny-xl-kohya.safetensors", "tiny-xl-kohya",
                            ModelLayers.from_model(FIXTURES / "tiny-sdxl-int8-ov"))
    assert prepared.unmatched == ()
    unet = [path for path in prepared.applied if ".attentions." in path]
    assert unet and all(path.startswith("model.down_blocks.") or path.startswith(("model.up_blocks.", "model.mid_block."))
                        for path in unet)


def test_alpha_over_rank_is_baked_into_the_up_matrix(tmp_path: Path, layers: ModelLayers) -> None:
    path = lora_file(tmp_path, layers, lambda p: "attn2.to_q" in p, kohya_key, alpha=1.0, rank=4)
    prepared = prepare_lora(path, "x", layers)
    original = read_tensors(path, "x")
    rewritten = read_tensors(_write(tmp_path, prepared.data), "y")
    up = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q.lora_up.weight"
    np.testing.assert_allclose(rewritten[up], original[
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_q.lora_up.weight"] / 4)


def _write(tmp_path: Path, data: np.ndarray) -> Path:
    path = tmp_path / "prepared.safetensors"
    path.write_bytes(data.tobytes())
    return path


def test_3x3_convolutions_are_skipped_and_reported() -> None:
    prepared = prepare_lora(LORAS / "tiny-lcm-layout.safetensors", "lcm", ModelLayers.from_model(MODEL))
    assert "down_blocks.0.resnets.0.conv1" in prepared.skipped and "conv_in" in prepared.skipped
    assert "down_blocks.0.resnets.0.time_emb_proj" in prepared.applied
    assert "down_blocks.1.resnets.0.conv_shortcut" in prepared.applied


def test_attention_coverage_leaves_resnet_layers_out(layers: ModelLayers) -> None:
    narrow = ModelLayers(layers.parts, layers.layers_per_block, coverage="attention")
    prepared = prepare_lora(LORAS / "tiny-lcm-layout.safetensors", "lcm", narrow)
    assert "down_blocks.0.resnets.0.time_emb_proj" in prepared.skipped
    assert all(".attentions." in path for path in prepared.applied)
    assert len(filler_tensors(narrow)) < len(filler_tensors(layers))
    with pytest.raises(ValueError, match="coverage"):
        ModelLayers(layers.parts, coverage="some")


def test_wrong_shapes_or_names_are_a_mismatch_naming_the_lora(tmp_path: Path, layers: ModelLayers) -> None:
    tensors = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight":
               np.zeros((4, 768), np.float16),
               "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight":
               np.zeros((32, 4), np.float16)}
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(tensors))
    with pytest.raises(LoraMismatch, match="'w'.*attn2.to_k is 32->32 in the model, the LoRA's is 768->32"):
        prepare_lora(tmp_path / "w.safetensors", "w", layers)
    tensors = {"lora_unet_double_blocks_0_img_attn_proj.lora_down.weight": np.zeros((4, 8), np.float16),
               "lora_unet_double_blocks_0_img_attn_proj.lora_up.weight": np.zeros((8, 4), np.float16)}
    (tmp_path / "flux.safetensors").write_bytes(safetensors_bytes(tensors))
    with pytest.raises(LoraMismatch, match="'flux'.*1 modules match no layer"):
        prepare_lora(tmp_path / "flux.safetensors", "flux", layers)
    del tensors["lora_unet_double_blocks_0_img_attn_proj.lora_up.weight"]
    (tmp_path / "half.safetensors").write_bytes(safetensors_bytes(tensors))
    with pytest.raises(LoraInvalid, match="'half'.*no up matrix"):
        prepare_lora(tmp_path / "half.safetensors", "half", layers)


def test_bf16_tensors_are_read_without_torch(tmp_path: Path) -> None:
    values = np.array([1.5, -2.0, 0.15625], np.float32)
    raw = (values.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    import json
    import struct

    header = json.dumps({"t": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    (tmp_path / "b.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + raw)
    np.testing.assert_array_equal(read_tensors(tmp_path / "b.safetensors", "b")["t"], values)


def test_filler_covers_every_linear_and_1x1_layer(layers: ModelLayers) -> None:
    filler = filler_tensors(layers)
    adaptable = [layer for table in layers.parts.values() for layer in table.values()
                 if not any(k > 1 for k in layer.kernel)]
    assert len(filler) == 2 * len(adaptable) and not any(np.any(t) for t in filler.values())
    header = read_header(_write(Path("/tmp"), np.frombuffer(safetensors_bytes(filler), np.uint8)))
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight" in header.tensors


# -- through openvino-genai --------------------------------------------------------------------
@pytest.fixture(scope="module")
def cache() -> AdapterCache:
    return AdapterCache(MODEL)


def test_derived_pipelines_share_the_lora_state_so_every_call_must_pass_adapters(cache: AdapterCache) -> None:
    import openvino as ov

    inpaint = g.InpaintingPipeline(MODEL, "CPU", adapters=cache.enabling_config())
    t2i, i2i, selector = g.Text2ImagePipeline(inpaint), g.Image2ImagePipeline(inpaint), LoraSelector(cache)
    kohya, _ = cache.get(LORAS / "tiny-kohya.safetensors", "tiny-kohya")
    off, on = image(t2i, adapters=selector.config([])), image(t2i, adapters=selector.config([(kohya, 1.0)]))
    assert image(t2i) == on  # no adapters= keeps the last applied ones: the server passes them every time
    init = ov.Tensor(np.full((1, 64, 64, 3), 100, np.uint8))

    def img2img(**kwargs: Any) -> bytes:
        return bytes(np.asarray(i2i.generate("a cat", init, num_inference_steps=3, strength=0.8,
                                             generator=genai_generator(3), **kwargs).data).tobytes())

    assert img2img(adapters=selector.config([(kohya, 1.0)])) != img2img(adapters=selector.config([]))
    assert image(t2i, adapters=selector.config([])) == off


def test_the_selector_adds_up_an_adapter_named_twice_and_drops_zero_weights(cache: AdapterCache) -> None:
    selector = LoraSelector(cache)
    kohya, _ = cache.get(LORAS / "tiny-kohya.safetensors", "tiny-kohya")
    peft, _ = cache.get(LORAS / "tiny-peft.safetensors", "tiny-peft")
    pairs = selector.config([(kohya, 0.25), (peft, 0.0), (kohya, 0.5)]).get_adapters_and_alphas()
    assert [alpha for _, alpha in pairs][:1] == [0.75] and len(pairs) == 2  # kohya, then the filler
    assert selector.config([]).get_adapters_and_alphas()[0][1] != pairs[-1][1]  # the filler's alpha flipped


def test_pipelines_assembled_from_parts_take_adapters_at_compile(cache: AdapterCache) -> None:
    """The fast-decoder path: InpaintingPipeline.stable_diffusion(...) then compile(device, adapters=...)."""
    parts = (g.Scheduler.from_config(MODEL / "scheduler" / "scheduler_config.json"),
             g.CLIPTextModel(MODEL / "text_encoder"), g.UNet2DConditionModel(MODEL / "unet"),
             g.AutoencoderKL(MODEL / "vae_encoder_tiny", MODEL / "vae_decoder_tiny"))
    pipe = g.InpaintingPipeline.stable_diffusion(*parts)
    pipe.compile("CPU", adapters=cache.enabling_config())
    t2i, selector = g.Text2ImagePipeline(pipe), LoraSelector(cache)
    peft, _ = cache.get(LORAS / "tiny-peft.safetensors", "tiny-peft")
    assert image(t2i, adapters=selector.config([(peft, 1.0)])) != image(t2i, adapters=selector.config([]))


def test_lora_enabled_without_a_lora_is_within_rounding_of_the_plain_image(cache: AdapterCache) -> None:
    """Not byte-identical: the LoRA branch changes how the CPU plugin fuses layers (1x1 convolutions even in
    f32; every layer in bf16). Weight 0 is byte-identical to no LoRA *on the LoRA-enabled pipeline*."""
    plain = np.frombuffer(image(g.Text2ImagePipeline(MODEL, "CPU")), np.uint8).astype(int)
    enabled = g.Text2ImagePipeline(MODEL, "CPU", adapters=cache.enabling_config())
    off = np.frombuffer(image(enabled, adapters=LoraSelector(cache).config([])), np.uint8).astype(int)
    assert np.abs(off - plain).mean() < 2 and np.abs(off - plain).max() <= 16


# -- pins: openvino-genai 2026.4 on its own ------------------------------------------------------
@pytest.fixture(scope="module")
def raw_files(tmp_path_factory: pytest.TempPathFactory, layers: ModelLayers) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("raw")
    unet_attn = lambda p: ".attentions." in p and "text_model" not in p  # noqa: E731
    files = {
        "a": lora_file(tmp, layers, unet_attn, kohya_key, seed=1, name="a"),
        "b": lora_file(tmp, layers, unet_attn, kohya_key, seed=2, name="b"),
        "a_alpha": lora_file(tmp, layers, unet_attn, kohya_key, seed=1, alpha=1.0, name="a_alpha"),
        "time": lora_file(tmp, layers, lambda p: "time_emb_proj" in p, kohya_key, seed=3, name="time"),
        "te": lora_file(tmp, layers, lambda p: "text_model" in p, kohya_key, seed=5, name="te"),
        "peft": lora_file(tmp, layers, unet_attn, lambda part, layer: f"unet.{layer.path}", seed=4, name="peft"),
    }
    tensors = {k.replace(".lora_down.weight", ".lora_A.weight").replace(".lora_up.weight", ".lora_B.weight"): v
               for k, v in read_tensors(files["peft"], "peft").items()}
    files["peft"].write_bytes(safetensors_bytes(tensors))
    return files


@pytest.fixture(scope="module")
def raw(raw_files: dict[str, Path]) -> tuple[Any, dict[str, Any]]:
    """A pipeline enabled the plain genai way: the LoRA itself at construction."""
    adapters = {name: g.Adapter(path) for name, path in raw_files.items()}
    return g.Text2ImagePipeline(MODEL, "CPU", adapters=config((adapters["a"], 1.0))), adapters


def test_genai_ignores_the_files_alpha(raw: tuple[Any, dict[str, Any]]) -> None:
    pipe, a = raw
    assert image(pipe, adapters=config((a["a_alpha"], 1.0))) == image(pipe, adapters=config((a["a"], 1.0)))


def test_genai_finds_no_layer_for_prefixed_peft_names_nor_kohya_time_emb_proj(
        raw: tuple[Any, dict[str, Any]], raw_files: dict[str, Path], cache: AdapterCache) -> None:
    pipe, a = raw
    off = image(pipe, adapters=config((a["a"], 0.0)))
    assert image(pipe, adapters=config((a["a"], 0.0), (a["peft"], 1.0))) == off
    assert image(pipe, adapters=config((a["a"], 0.0), (a["time"], 1.0))) == off
    enabled, selector = g.Text2ImagePipeline(MODEL, "CPU", adapters=cache.enabling_config()), LoraSelector(cache)
    sdedge_off = image(enabled, adapters=selector.config([]))
    for name in ("peft", "time"):  # rewritten by prepare_lora, both apply
        adapter, prepared = cache.get(raw_files[name], name)
        assert prepared.applied and not prepared.unmatched
        assert image(enabled, adapters=selector.config([(adapter, 1.0)])) != sdedge_off, name


def test_genai_adapts_only_layers_an_adapter_touched_at_construction(raw: tuple[Any, dict[str, Any]]) -> None:
    pipe, a = raw  # built with a UNet-only LoRA: the text encoder got no LoRA state
    # ("a" at weight 0 stays listed: a UNet layer left without any LoRA would hit the black-image bug below)
    assert image(pipe, adapters=config((a["a"], 0.0), (a["te"], 1.0))) == image(pipe, adapters=config((a["a"], 0.0)))


def test_genai_misses_an_alpha_change_of_any_but_the_last_adapter(raw: tuple[Any, dict[str, Any]]) -> None:
    pipe, a = raw
    both = image(pipe, adapters=config((a["a"], 1.0), (a["b"], 1.0)))
    only_b = image(pipe, adapters=config((a["b"], 1.0)))
    assert both != only_b
    image(pipe, adapters=config((a["a"], 1.0), (a["b"], 1.0)))
    assert image(pipe, adapters=config((a["a"], 0.0), (a["b"], 1.0))) == both  # should have been only_b


def test_adapters_per_call_need_adapters_at_construction() -> None:
    plain = g.Text2ImagePipeline(MODEL, "CPU")
    with pytest.raises(RuntimeError):
        image(plain, adapters=config((g.Adapter(LORAS / "tiny-kohya.safetensors"), 1.0)))
    image(plain, adapters=g.AdapterConfig())  # an empty config is accepted


def _cpu_runs_bf16() -> bool:
    import openvino as ov

    core = ov.Core()
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES") and \
        str(core.get_property("CPU", "INFERENCE_PRECISION_HINT")) in ("bf16", "<Type: 'bfloat16'>")


@pytest.mark.skipif(not _cpu_runs_bf16(), reason="seen with bf16 inference only")
def test_genai_gives_black_images_after_an_empty_config_in_bf16(raw: tuple[Any, dict[str, Any]]) -> None:
    pipe, a = raw
    assert max(image(pipe, adapters=config((a["a"], 1.0)))) > 0
    image(pipe, adapters=g.AdapterConfig())
    assert max(image(pipe, adapters=config((a["a"], 1.0)))) == 0  # all zero: the filler avoids this state
    image(pipe, adapters=config((a["a"], 1.0), (a["b"], 1.0)))  # a larger rank reallocates and recovers


def test_genai_raises_on_3x3_conv_loras_and_fused_int8_weights(tmp_path: Path, layers: ModelLayers) -> None:
    with pytest.raises(RuntimeError):  # "LoRA adapter with not pointwise Convolutional kernel is not supported"
        pipe = g.Text2ImagePipeline(MODEL, "CPU", adapters=config((g.Adapter(LORAS / "tiny-lcm-layout.safetensors"),
                                                                    1.0)))
        image(pipe)
    fuse = g.AdapterConfig(g.AdapterConfig.Mode.MODE_FUSE)
    fuse.add(g.Adapter(LORAS / "tiny-kohya.safetensors"), 1.0)
    with pytest.raises(RuntimeError):  # int8-compressed weights cannot be fused
        g.Text2ImagePipeline(MODEL, "CPU", adapters=fuse)
