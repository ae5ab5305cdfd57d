"""Engine loading states, reasons and warm-up."""

from __future__ import annotations

from pathlib import Path

from conftest import make_settings
from sdedge.engine.loader import EngineLoader, LoadState


def test_local_model_loads_ready_with_warm_up(tmp_path: Path) -> None:
    loader = EngineLoader(make_settings(tmp_path, warmup=True))
    engine = loader.load_now()
    assert loader.state is LoadState.READY and loader.reason is None
    assert loader.status()["actual_device"] == "CPU" and engine.info()["image_inputs"] is True


def test_missing_model_without_download_is_missing_with_a_reason(tmp_path: Path) -> None:
    loader = EngineLoader(make_settings(tmp_path, stable_diffusion_repo_id="org/none", auto_download_models=False))
    loader.start()
    assert loader.wait(30)
    assert loader.state is LoadState.MISSING and "org/none" in (loader.reason or "")
    assert not loader.ready


def test_incomplete_local_folder_is_missing_naming_files(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model_index.json").write_text("{}")
    loader = EngineLoader(make_settings(tmp_path, stable_diffusion_repo_id=str(tmp_path / "half")))
    loader.start()
    assert loader.wait(30) and loader.state is LoadState.MISSING
    assert "unet/openvino_model.xml" in (loader.reason or "")
