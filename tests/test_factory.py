"""The engine factory seam (sdedge/engine/factory.py) and the tests' shelf of loaded engines (tests/engine_shelf.py).

create_app builds every engine through the factory it is given, from a spec of the app's settings; the shelf
lends an engine to one live app at a time, re-pointed at that app's LoRA folder, and takes back only engines
that are as a new one would be (still held by a pool, so not closed; plain pipelines), so no test sees what another did.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ENGINES, FIXTURE_MODEL, SHARED_COMPILE_CACHE, _apps, make_settings, start_app
from engine_shelf import EngineShelf, held_engines, reusable
from sdedge.app import create_app
from sdedge.engine.factory import EngineSpec, build_engine
from sdedge.engine.params import Engine, GenerationParams, LoraWeight
from sdedge.engine.pool import EnginePool

LORAS = Path(__file__).parent / "fixtures" / "loras"


def spec(lora_dir: Path) -> EngineSpec:
    return EngineSpec(FIXTURE_MODEL, "CPU", properties={"CACHE_DIR": str(SHARED_COMPILE_CACHE / "tiny-sd-int8-ov")},
                      lora_dir=lora_dir)


def test_create_app_builds_its_engines_through_the_given_factory(tmp_path: Path) -> None:
    built: list[tuple[EngineSpec, Engine]] = []

    def factory(asked: EngineSpec) -> Engine:
        built.append((asked, build_engine(asked)))
        return built[-1][1]

    settings = make_settings(tmp_path, lora_coverage="attention", lora_release_after=3)
    app = create_app(settings, engine_factory=factory)
    _apps.append(app)
    loader = app.extensions["sdedge"].loader
    assert loader.wait(timeout=600) and loader.ready
    [(asked, engine)] = built
    assert asked.model_path == FIXTURE_MODEL and asked.device == "CPU" and asked.lora_dir == settings.loras_dir
    assert asked.lora_coverage == "attention" and asked.lora_policy.release_after == 3
    assert str(asked.properties["CACHE_DIR"]).startswith(str(SHARED_COMPILE_CACHE))
    assert loader.engine() is engine


def test_the_shelf_lends_to_one_app_at_a_time_and_takes_back_only_engines_as_new(tmp_path: Path) -> None:
    shelf = EngineShelf()
    first, second = shelf.lender(), shelf.lender()
    one = first(spec(tmp_path / "one"))
    two = second(spec(tmp_path / "two"))
    assert one is not two and shelf.built == 2  # one is lent: the other live app gets an engine of its own
    first.give_back([one])
    second.give_back([two])
    assert len(shelf) == 2

    third = shelf.lender()
    again = third(spec(LORAS))
    assert again in (one, two) and shelf.reused == 1
    params = GenerationParams("a boat", "", 64, 64, 2, 7.5, "euler_a", 5, loras=(LoraWeight("tiny-kohya", 1.0),))
    assert again.generate(params).images  # the LoRA is found in the new app's folder, not the first one's
    assert again.info()["lora_ready"] and not reusable(again)
    third.give_back([again])
    assert len(shelf) == 1  # LoRA-ready pipelines are not as new: dropped

    fourth = shelf.lender()
    last = fourth(spec(tmp_path / "four"))
    pool = EnginePool(max_loaded=1)
    pool.put("tiny", last, 0, 0.0)
    pool.unload("tiny")  # a model switch: the pool closes the engine
    fourth.give_back(held_engines([SimpleNamespace(pool=pool)]))  # type: ignore[list-item]
    assert len(shelf) == 0 and shelf.reused == 2


def test_only_the_plain_cpu_path_on_the_fixture_models_is_shared(tmp_path: Path) -> None:
    from engine_shelf import shelf_key
    from sdedge.engine.lora_state import LoraPolicy

    plain = spec(tmp_path)
    assert shelf_key(plain) is not None and shelf_key(plain) == shelf_key(spec(tmp_path / "other"))
    assert shelf_key(EngineSpec(FIXTURE_MODEL, "GPU")) is None
    assert shelf_key(EngineSpec(FIXTURE_MODEL, "CPU", lora_policy=LoraPolicy(preload=True))) is None
    assert shelf_key(EngineSpec(tmp_path / "a-copy", "CPU")) is None
    assert shelf_key(EngineSpec(FIXTURE_MODEL, "CPU", tiny_previews=True)) is None
    assert shelf_key(EngineSpec(FIXTURE_MODEL, "CPU", properties={"CACHE_DIR": str(tmp_path)})) != shelf_key(plain)


@pytest.mark.fresh_engine
def test_a_test_marked_fresh_engine_loads_engines_of_its_own(tmp_path: Path) -> None:
    asked = (ENGINES.built, ENGINES.reused)
    app = start_app(make_settings(tmp_path))
    assert app.extensions["sdedge"].loader.ready and (ENGINES.built, ENGINES.reused) == asked  # the shelf was not asked
