"""sdedge.loras: the LoRA folder, headers, layouts, fit checks, prompt tags, A1111 hashes; and, through
openvino-genai on the tiny fixtures, what a LoRA does to an image (weight 0, 1, two LoRAs, another family)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sdedge.loras import (
    LoraInvalid, LoraMismatch, LoraNotFound, LoraRef, LoraSyntaxError, check_fits, infotext_lora_hashes,
    inspect_lora, list_loras, lora_hash, model_arch, parse_prompt, read_header, resolve_lora, short_hash,
)

FIXTURES = Path(__file__).parent / "fixtures"
LORAS = FIXTURES / "loras"
MODEL = FIXTURES / "tiny-sd-int8-ov"
ROOT = Path(__file__).parent.parent


def write_safetensors(path: Path, header: dict[str, Any], data: bytes = b"") -> Path:
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return path


# -- folder and names --------------------------------------------------------------------------
def test_list_loras_gives_name_alias_path_size() -> None:
    found = {f.name: f for f in list_loras(LORAS)}
    assert set(found) == {"tiny-kohya", "tiny-peft", "tiny-lcm-layout", "tiny-sdxl", "tiny-loha", "tiny-xl-kohya"}
    kohya = found["tiny-kohya"]
    assert kohya.alias == "tiny kohya alias"  # ss_output_name, as A1111 shows it
    assert found["tiny-peft"].alias == "tiny-peft"
    assert kohya.path == (LORAS / "tiny-kohya.safetensors").resolve()
    assert kohya.size == kohya.path.stat().st_size


def test_list_loras_walks_subfolders_and_skips_what_is_not_a_lora(tmp_path: Path) -> None:
    (tmp_path / "style").mkdir()
    (tmp_path / "style" / "a.safetensors").write_bytes((LORAS / "tiny-peft.safetensors").read_bytes())
    (tmp_path / "broken.safetensors").write_bytes(b"\xff" * 4)
    (tmp_path / "notes.txt").write_text("x")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.safetensors"
    outside.write_bytes((LORAS / "tiny-peft.safetensors").read_bytes())
    (tmp_path / "link.safetensors").symlink_to(outside)
    assert [f.name for f in list_loras(tmp_path)] == ["style/a"]
    assert list_loras(tmp_path / "missing") == []


@pytest.mark.parametrize("name", ["../tiny-sd-int8-ov/x", "/etc/passwd", "a/../../b", "", ".", "a//b", "C:x",
                                  "a\\b", "x\x00y", "nope"])
def test_resolve_lora_refuses_names_outside_the_folder(name: str) -> None:
    with pytest.raises(LoraNotFound) as info:
        resolve_lora(LORAS, name)
    assert info.value.name == name


def test_resolve_lora_refuses_a_symlink_out_but_follows_one_inside(tmp_path: Path) -> None:
    target = tmp_path / "outside.safetensors"
    target.write_bytes((LORAS / "tiny-peft.safetensors").read_bytes())
    folder = tmp_path / "loras"
    folder.mkdir()
    (folder / "out.safetensors").symlink_to(target)
    (folder / "real.safetensors").write_bytes(target.read_bytes())
    (folder / "alias.safetensors").symlink_to(folder / "real.safetensors")
    with pytest.raises(LoraNotFound):
        resolve_lora(folder, "out")
    assert resolve_lora(folder, "alias") == (folder / "real.safetensors").resolve()
    assert resolve_lora(folder, "real.safetensors") == (folder / "real.safetensors").resolve()


# -- headers -----------------------------------------------------------------------------------
def test_read_header_parses_tensors_and_metadata() -> None:
    header = read_header(LORAS / "tiny-kohya.safetensors")
    assert header.metadata["ss_network_dim"] == "4"
    down = header.tensors["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"]
    assert (down.dtype, down.shape) == ("F16", (4, 32, 1, 1))
    assert header.data_offset % 8 == 0


@pytest.mark.parametrize("header, data, message", [
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, b"\0" * 8, "outside the file"),
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8, "outside the file"),
    ({"x": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8, "bad header entry"),
    ({"x": {"shape": [2]}}, b"", "bad header entry"),
])
def test_read_header_refuses_inconsistent_entries(tmp_path: Path, header: dict[str, Any], data: bytes,
                                                  message: str) -> None:
    with pytest.raises(LoraInvalid, match=message):
        read_header(write_safetensors(tmp_path / "bad.safetensors", header, data))


def test_read_header_refuses_garbage(tmp_path: Path) -> None:
    for name, content in {"short": b"\1\2", "huge": struct.pack("<Q", 1 << 40) + b"{}",
                          "text": struct.pack("<Q", 4) + b"nope", "list": struct.pack("<Q", 2) + b"[]"}.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(LoraInvalid, match=name):
            read_header(path, name)


# -- layouts and families ----------------------------------------------------------------------
@pytest.mark.parametrize("name, layout, base, cross, text", [
    ("tiny-kohya", "kohya", "sd", 32, (32,)),
    ("tiny-peft", "peft", "sd", 32, (32,)),
    ("tiny-lcm-layout", "kohya", "sd", 32, ()),
    ("tiny-sdxl", "kohya", "sdxl", 2048, (768, 1280)),
    ("tiny-loha", "lycoris", "unknown", None, ()),
])
def test_inspect_lora_detects_layout_and_base(name: str, layout: str, base: str, cross: int | None,
                                              text: tuple[int, ...]) -> None:
    info = inspect_lora(LORAS / f"{name}.safetensors")
    assert (info.layout, info.base, info.cross_attention_dim, info.text_hidden_sizes) == (layout, base, cross, text)


def _fake(tmp_path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = int(np.prod(shape)) * 2
        header[key] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    return write_safetensors(tmp_path / "fake.safetensors", header, b"\0" * offset)


@pytest.mark.parametrize("key, shape, base", [
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", (4, 768), "sd1"),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", (4, 1024), "sd2"),
    ("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight", (4, 2048), "sdxl"),
    ("lora_unet_double_blocks_0_img_attn_proj.lora_down.weight", (4, 3072), "flux"),
    ("transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight", (4, 3072), "flux"),
    ("transformer.transformer_blocks.0.attn.add_q_proj.lora_A.weight", (4, 1536), "sd3"),
    ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", (4, 4096), "unknown"),  # an LLM's LoRA
])
def test_inspect_lora_tells_families_apart_by_names_and_widths(tmp_path: Path, key: str, shape: tuple[int, ...],
                                                               base: str) -> None:
    assert inspect_lora(_fake(tmp_path, {key: shape})).base == base


def test_model_arch_reads_the_configs() -> None:
    arch = model_arch(MODEL)
    assert (arch.family, arch.cross_attention_dim, arch.block_out_channels, arch.text_hidden_sizes) == \
        ("sd", 32, (32, 64), (32,))


def test_loras_made_for_this_model_fit() -> None:
    arch = model_arch(MODEL)
    for name in ("tiny-kohya", "tiny-peft", "tiny-lcm-layout"):
        check_fits(name, inspect_lora(LORAS / f"{name}.safetensors"), arch)


def test_a_lora_of_another_family_or_layout_is_refused_by_name() -> None:
    arch = model_arch(MODEL)
    with pytest.raises(LoraMismatch, match="'tiny-sdxl'.*SDXL"):
        check_fits("tiny-sdxl", inspect_lora(LORAS / "tiny-sdxl.safetensors"), arch)
    with pytest.raises(LoraInvalid, match="'tiny-loha'.*lycoris"):
        check_fits("tiny-loha", inspect_lora(LORAS / "tiny-loha.safetensors"), arch)


def test_a_real_sd15_lora_does_not_fit_the_tiny_widths(tmp_path: Path) -> None:
    path = _fake(tmp_path, {
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 768),
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": (4, 768)})
    with pytest.raises(LoraMismatch, match="cross-attention width 768 \\(SD 1.x\\), the model's is 32"):
        check_fits("sd15", inspect_lora(path), model_arch(MODEL))


def test_lora_tensors_genai_cannot_load_are_refused(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "f64.safetensors", {
        "lora_unet_x_attn1_to_q.lora_down.weight": {"dtype": "F64", "shape": [1, 32], "data_offsets": [0, 256]}},
        b"\0" * 256)
    with pytest.raises(LoraInvalid, match="F64"):
        check_fits("f64", inspect_lora(path), model_arch(MODEL))
    empty = _fake(tmp_path, {"some.weight": (2, 2)})
    with pytest.raises(LoraInvalid, match="no LoRA"):
        inspect_lora(empty, "empty")


# -- prompt syntax -----------------------------------------------------------------------------
@pytest.mark.parametrize("prompt, clean, refs", [
    ("a cat <lora:tiny-kohya:0.8>", "a cat", [LoraRef("tiny-kohya", 0.8)]),
    ("<lora:a> a cat, <lora:b:-0.5>, 8k", "a cat, 8k", [LoraRef("a", 1.0), LoraRef("b", -0.5)]),
    ("a cat <LORA:a:1> <lyco:b:0.3>", "a cat", [LoraRef("a", 1.0), LoraRef("b", 0.3)]),
    ("<lora:a:0.5> x <lora:a:0.25>", "x", [LoraRef("a", 0.75)]),
    ("<lora:a:0.5:0.5> x", "x", [LoraRef("a", 0.5)]),
    ("<lora: style/ink :1>", "", [LoraRef("style/ink", 1.0)]),
    ("no tags here <hypernet:x:1>", "no tags here <hypernet:x:1>", []),
])
def test_parse_prompt_takes_tags_out(prompt: str, clean: str, refs: list[LoraRef]) -> None:
    assert parse_prompt(prompt) == (clean, refs)


@pytest.mark.parametrize("prompt, message", [
    ("<lora::1>", "malformed"), ("<lora:a:x>", "not a number"), ("<lora:a:1:0.5>", "separate"),
    ("<lora:a:1:2:3>", "malformed"), ("<lora:a:nan>", "outside"), ("<lora:a:11>", "outside"),
])
def test_parse_prompt_refuses_bad_tags(prompt: str, message: str) -> None:
    with pytest.raises(LoraSyntaxError, match=message):
        parse_prompt(prompt)


# -- hashes and infotext -----------------------------------------------------------------------
def test_lora_hash_is_a1111s_sha256_of_the_data_after_the_header() -> None:
    path = LORAS / "tiny-kohya.safetensors"
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert lora_hash(path) == hashlib.sha256(raw[8 + length:]).hexdigest()
    assert short_hash(path) == lora_hash(path)[:12]


def test_lora_hash_prefers_sshs_model_hash(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", {"__metadata__": {"sshs_model_hash": "abc123def4567890"}})
    assert short_hash(path) == "abc123def456"


def test_infotext_lora_hashes_matches_a1111() -> None:
    assert infotext_lora_hashes([("tiny-kohya", "0123456789ab")]) == 'Lora hashes: "tiny-kohya: 0123456789ab"'
    assert infotext_lora_hashes([("a:b,c", "1"), ("d", "2")]) == 'Lora hashes: "abc: 1, d: 2"'
    assert infotext_lora_hashes([]) == ""


# -- the fixtures ------------------------------------------------------------------------------
def test_fixture_script_rebuilds_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_tiny_loras.py"), "--output", str(tmp_path)],
                   check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for path in sorted(LORAS.glob("*.safetensors")):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
        assert path.stat().st_size < 200_000


# -- through openvino-genai --------------------------------------------------------------------
@pytest.fixture(scope="module")
def lora_pipe() -> Any:
    """An InpaintingPipeline built the server's way (LoRA enabled), Text2Image derived from it."""
    import openvino_genai as g

    from sdedge.lora_adapters import AdapterCache, LoraSelector

    cache = AdapterCache(MODEL)
    inpaint = g.InpaintingPipeline(MODEL, "CPU", adapters=cache.enabling_config())
    return cache, LoraSelector(cache), g.Text2ImagePipeline(inpaint)


def generate(lora_pipe: Any, prompt: str, seed: int = 7) -> bytes:
    """The image for a prompt with A1111 tags, run as the server would: tags out, LoRAs checked."""
    from sdedge.rng import genai_generator

    cache, selector, pipe = lora_pipe
    text, refs = parse_prompt(prompt)
    arch, pairs = model_arch(MODEL), []
    for ref in refs:
        path = resolve_lora(LORAS, ref.name)
        check_fits(ref.name, inspect_lora(path, ref.name), arch)
        pairs.append((cache.get(path, ref.name)[0], ref.weight))
    image = pipe.generate(text, width=64, height=64, num_inference_steps=3, generator=genai_generator(seed),
                          adapters=selector.config(pairs))
    return bytes(np.asarray(image.data).tobytes())


def test_weight_zero_gives_the_bytes_of_no_lora(lora_pipe: Any) -> None:
    plain = generate(lora_pipe, "a cat")
    assert generate(lora_pipe, "a cat <lora:tiny-kohya:1>") != plain
    assert generate(lora_pipe, "a cat <lora:tiny-kohya:0>") == plain
    assert generate(lora_pipe, "a cat <lora:tiny-kohya:0> <lora:tiny-peft:0>") == plain


def test_weight_one_changes_the_image_visibly_and_repeats(lora_pipe: Any) -> None:
    plain = np.frombuffer(generate(lora_pipe, "a cat"), np.uint8).astype(int)
    for name in ("tiny-kohya", "tiny-peft", "tiny-lcm-layout"):
        once = generate(lora_pipe, f"a cat <lora:{name}:1>")
        assert np.abs(np.frombuffer(once, np.uint8).astype(int) - plain).mean() > 5, name
        generate(lora_pipe, "a cat")
        assert generate(lora_pipe, f"a cat <lora:{name}:1>") == once, f"{name} after a switch"


def test_two_loras_blend_into_a_third_image(lora_pipe: Any) -> None:
    a = generate(lora_pipe, "a cat <lora:tiny-kohya:1>")
    b = generate(lora_pipe, "a cat <lora:tiny-peft:1>")
    both = generate(lora_pipe, "a cat <lora:tiny-kohya:1> <lora:tiny-peft:1>")
    assert len({a, b, both, generate(lora_pipe, "a cat")}) == 4
    # genai 2026.4 misses an alpha change unless it is the last adapter's: the selector's filler covers it
    half = generate(lora_pipe, "a cat <lora:tiny-kohya:0.5> <lora:tiny-peft:1>")
    assert half not in (both, b)
    assert generate(lora_pipe, "a cat <lora:tiny-kohya:1> <lora:tiny-peft:1>") == both


def test_a_lora_of_another_family_is_refused_before_generating(lora_pipe: Any) -> None:
    with pytest.raises(LoraMismatch, match="tiny-sdxl"):
        generate(lora_pipe, "a cat <lora:tiny-sdxl:1>")
    with pytest.raises(LoraNotFound, match="'../x'"):
        generate(lora_pipe, "a cat <lora:../x:1>")
    assert generate(lora_pipe, "a cat <lora:tiny-kohya:1>") != generate(lora_pipe, "a cat")
