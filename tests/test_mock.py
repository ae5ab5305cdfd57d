"""Mock mode (USE_MOCKS=true): placeholder images, flagged in every response."""

from __future__ import annotations

from pathlib import Path

from conftest import make_settings, start_app


def test_mock_mode_flags_every_response_and_needs_no_model(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, use_mocks=True, stable_diffusion_repo_id="someone/absent-model")
    client = start_app(settings).test_client()
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["used_mocks"] is True
    body = client.post("/image", json={"prompt": "x", "width": 128, "height": 64, "seed": 3}).get_json()
    assert body["used_mocks"] is True and body["engine"] == "mock" and body["seeds"] == [3]
    image = client.get(body["urls"][0])
    assert image.status_code == 200 and image.mimetype == "image/png"


def test_mock_mode_is_never_the_default(settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.use_mocks is False


def test_mock_engine_stops_with_a_partial_it_can_decode() -> None:
    import pytest

    from sdedge.engine.mock import MockEngine
    from sdedge.engine.params import GenerationParams
    from sdedge.errors import GenerationCanceled

    params = GenerationParams("x", "", 64, 64, 4, 7.5, "euler_a", 1)
    with pytest.raises(GenerationCanceled) as stopped:
        MockEngine().generate(params, lambda e: e.step >= 2)
    partial = stopped.value.partial
    assert partial.images == [] and partial.latent_seed == 1
    assert MockEngine().decode_latent(partial.latent, params).size == (64, 64)
