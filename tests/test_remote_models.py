"""REMOTE_ENGINES: entries read from the environment, credentials resolved, what each remote model can run."""

from __future__ import annotations

import json

import pytest

from sdedge.config import Settings, SettingsError, load_settings
from sdedge.remote.models import remote_models


def settings_with(monkeypatch: pytest.MonkeyPatch, engines: list[dict[str, object]], **env: str) -> Settings:
    monkeypatch.setenv("REMOTE_ENGINES", json.dumps(engines))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(_env_file=None)


def test_entries_and_their_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    engines = [{"id": "big-box", "kind": "a1111", "url": "http://192.168.1.30:7860/", "key_env": "BOX_AUTH",
                "model": "dreamshaper_8"},
               {"id": "sai", "kind": "stability"},
               {"id": "sai-own", "kind": "stability", "key": "sk-own", "model": "sd3.5-large"},
               {"id": "ultra", "kind": "stability", "model": "ultra", "key_env": "ULTRA_KEY"}]
    found = remote_models(settings_with(monkeypatch, engines, BOX_AUTH="bob:token", STABILITY_API_KEY="sk-env"))
    assert [(m.id, m.url, m.key, m.problem) for m in found] == [
        ("big-box", "http://192.168.1.30:7860", "bob:token", None),
        ("sai", "https://api.stability.ai", "sk-env", None),  # STABILITY_API_KEY when the entry has none
        ("sai-own", "https://api.stability.ai", "sk-own", None),
        ("ultra", "https://api.stability.ai", "sk-env", None)]  # ULTRA_KEY unset: the setting
    assert [m.modes for m in found] == [("text2img", "img2img", "inpaint"), ("text2img", "inpaint"),
                                        ("text2img", "img2img", "inpaint"), ("text2img", "img2img", "inpaint")]
    assert [m.stability_service for m in found[1:]] == ["core", "sd3", "ultra"]
    assert "sk-" not in json.dumps([m.describe() for m in found]) and "sk-" not in repr(found)


def test_misconfigured_entries_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    engines = [{"id": "sai", "kind": "stability"}, {"id": "box", "kind": "a1111"},
               {"id": "box2", "kind": "a1111", "url": "http://b:7860", "key_env": "NOT_SET_ANYWHERE"}]
    found = remote_models(settings_with(monkeypatch, engines))
    assert [m.problem for m in found] == [
        "no Stability AI API key: set STABILITY_API_KEY (or key/key_env in its REMOTE_ENGINES entry)",
        "no url: set the AUTOMATIC1111-compatible server's address in its REMOTE_ENGINES entry",
        "the variable NOT_SET_ANYWHERE named by key_env is not set"]


@pytest.mark.parametrize("engines, message", [
    ('[{"id": "x", "kind": "comfy", "url": "http://a"}]', "REMOTE_ENGINES"),
    ('[{"id": "x", "kind": "a1111", "url": "a:7860"}]', "url must start with http"),
    ('[{"id": "x", "kind": "a1111"}, {"id": "x", "kind": "stability"}]', "each entry needs its own id"),
    ('[{"id": "has space", "kind": "a1111"}]', "REMOTE_ENGINES"),
    ('{"id": "x"}', "REMOTE_ENGINES"),
])
def test_bad_entries_stop_start_up_naming_the_setting(monkeypatch: pytest.MonkeyPatch, engines: str,
                                                      message: str) -> None:
    monkeypatch.setenv("REMOTE_ENGINES", engines)
    with pytest.raises(SettingsError, match=message):
        load_settings(_env_file=None)
