"""Settings: env names from the seed, defaults, one clear line for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdedge.config import DEFAULT_REPO_ID, Settings, SettingsError, load_settings

ROOT = Path(__file__).parent.parent


def test_defaults_match_the_seed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    settings = load_settings()
    assert settings.stable_diffusion_repo_id == DEFAULT_REPO_ID
    assert settings.openvino_device == "GPU" and settings.use_mocks is False
    assert settings.auto_download_models is True and settings.request_timeout == 45.0
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PORT=9001\nOPENVINO_DEVICE=cpu\n")
    monkeypatch.setenv("USE_MOCKS", "true")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    settings = load_settings()
    assert settings.port == 9001 and settings.openvino_device == "CPU"
    assert settings.use_mocks is True and settings.huggingface_token == "hf_secret"


def test_huggingface_token_wins_over_hf_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUGGINGFACE_TOKEN", "first")
    monkeypatch.setenv("HF_TOKEN", "second")
    assert Settings(_env_file=None).huggingface_token == "first"  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("name", "value"),
    [("OPENVINO_DEVICE", "TPU"), ("PORT", "eighty"), ("MAX_WIDTH", "1001"), ("USE_MOCKS", "maybe")],
)
def test_invalid_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert "\n" not in message and name in message


def test_local_folder_is_recognised(tmp_path: Path) -> None:
    assert Settings(_env_file=None, stable_diffusion_repo_id=str(tmp_path)).model_is_local  # type: ignore[call-arg]
    assert not Settings(_env_file=None).model_is_local  # type: ignore[call-arg]


def test_every_setting_is_documented_in_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    for name, field in Settings.model_fields.items():
        assert f"{name.upper()}=" in example, f"{name.upper()} missing from .env.example"
        assert field.description, f"{name} has no description"


def test_path_settings_are_absolute_against_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None, stable_diffusion_repo_id="./models/mine")  # type: ignore[call-arg]
    assert settings.generated_images_dir == tmp_path.resolve() / "data" / "generated"
    assert settings.models_cache_dir == tmp_path.resolve() / "data" / "models"
    assert settings.data_dir == tmp_path.resolve() / "data"
    assert settings.stable_diffusion_repo_id == str(tmp_path.resolve() / "models" / "mine")
    assert Settings(_env_file=None).stable_diffusion_repo_id == "OpenVINO/stable-diffusion-v1-5-int8-ov"  # type: ignore[call-arg]
