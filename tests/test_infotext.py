"""AUTOMATIC1111 infotext written into our PNGs."""

from __future__ import annotations

from sdedge.engine.params import GenerationParams
from sdedge.infotext import infotext, parse_infotext

PARAMS = GenerationParams("a cat", "dog", 512, 768, 20, 7.5, "euler_a", 42)


def test_infotext_is_automatic1111_format() -> None:
    assert infotext(PARAMS, 42, "sd15") == (
        "a cat\nNegative prompt: dog\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 512x768, Model: sd15"
    )


def test_parse_reads_our_infotext_back_as_automatic1111_does() -> None:
    parsed = parse_infotext(infotext(PARAMS, 42, "sd15"))
    assert parsed == {"Prompt": "a cat", "Negative prompt": "dog", "Steps": "20", "Sampler": "Euler a",
                      "CFG scale": "7.5", "Seed": "42", "Size-1": "512", "Size-2": "768", "Model": "sd15",
                      "Clip skip": "1"}


def test_parse_multiline_prompts_quoted_values_and_plain_text() -> None:
    text = 'a cat\non a mat\nNegative prompt: dog\nblurry\nSteps: 4, Sampler: Euler, Lora hashes: "a: 1, b: 2", Seed: 1'
    parsed = parse_infotext(text)
    assert parsed["Prompt"] == "a cat\non a mat" and parsed["Negative prompt"] == "dog\nblurry"
    assert parsed["Lora hashes"] == "a: 1, b: 2" and parsed["Seed"] == "1"
    assert parse_infotext("just a prompt, nothing else")["Prompt"] == "just a prompt, nothing else"
