"""LoRA styles on the tiny model: loaded once, switched per job, and gone when not asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gpu_worker.engine import Engine
from gpu_worker.errors import InvalidTask
from gpu_worker.extras import Extras
from gpu_worker.lora import with_triggers
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderTask
from gpu_worker.tiny_extras import STYLE_TRIGGER, write_tiny_lora
from imagine.settings import Settings
from storage.contract import SpeedMode
from tests.worker.conftest import pixels, request


def grid(engine: Engine, seed: int = 4, **changes: Any) -> list[np.ndarray]:
    return [pixels(i) for i in engine.render(RenderTask(request(**changes), seed=seed)).images]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def apart(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return min(float(np.abs(x - y).mean()) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def two_styles(tiny_extras_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The extras config plus a second style, found by scanning a LoRA directory."""
    directory = tmp_path_factory.mktemp("loras")
    write_tiny_lora(directory / "Ink Wash.safetensors", seed=11)
    return Settings.load({}, config_file=tiny_extras_dir / "extras.toml", lora_dir=directory)


def test_styles_come_from_named_entries_and_the_scanned_directory(two_styles: Settings) -> None:
    configured = Extras.from_settings(two_styles)
    assert sorted(configured.loras) == ["ink-wash", "tiny-style"]
    assert configured.loras["tiny-style"].trigger == STYLE_TRIGGER
    assert configured.loras["tiny-style"].weight == 0.8
    assert configured.loras["ink-wash"].trigger == ""
    assert configured.capabilities()["loras"] == {
        "ink-wash": {"trigger": "", "weight": 1.0},
        "tiny-style": {"trigger": STYLE_TRIGGER, "weight": 0.8},
    }


@pytest.mark.parametrize(
    ("loras", "message"),
    [
        ({"Bad Name": {"path": "/x.safetensors"}}, "bad style name 'Bad Name'"),
        ({"ok": {}}, r"loras.ok needs a path \(a LoRA .safetensors file\)"),
        ({"ok": {"path": "/x", "weight": 3}}, "loras.ok.weight must be a number 0..2, got 3"),
    ],
)
def test_bad_style_entries_are_refused(loras: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Extras.from_settings(Settings.load({}, loras=loras))


def test_a_job_without_loras_after_one_with_is_bit_identical_to_before(
    two_styles: Settings,
) -> None:
    engine = Engine(ModelRegistry(two_styles.engine()), cpu_threads=1)
    before = grid(engine)
    styled = grid(engine, loras=(("tiny-style", 1.0), ("ink-wash", 0.7)))
    assert apart(before, styled) > 1.0
    after = grid(engine)
    assert same(before, after)
    # The turbo UNet's own copy of the adapter switches off the same way.
    turbo_before = grid(engine, mode=SpeedMode.TURBO)
    assert apart(grid(engine, mode=SpeedMode.TURBO, loras=(("ink-wash", 1.0),)), turbo_before) > 0
    assert same(grid(engine, mode=SpeedMode.TURBO), turbo_before)
    assert same(grid(engine), before)


def test_each_lora_is_loaded_once_and_weights_switch_per_job(two_styles: Settings) -> None:
    engine = Engine(ModelRegistry(two_styles.engine()), cpu_threads=1)
    full = grid(engine, loras=(("ink-wash", 1.0),))
    half = grid(engine, loras=(("ink-wash", 0.5),))
    assert apart(full, half) > 0
    assert same(grid(engine, loras=(("ink-wash", 1.0),)), full)
    both = grid(engine, loras=(("ink-wash", 1.0), ("tiny-style", 1.0)))
    assert apart(both, full) > 0
    base = engine.registry.get(None)
    assert engine.features.adapters(base).loads == 2


def test_a_style_job_paints_its_trigger_words(extras_engine: Engine) -> None:
    result = extras_engine.render(
        RenderTask(request("a fox", loras=(("tiny-style", 1.0),)), seed=2, indices=(0,))
    )
    assert result.info == {"profile": "default", "loras": [["tiny-style", 1.0]]}
    assert with_triggers((("a fox", 0.7), ("rain", -0.3)), [STYLE_TRIGGER, ""]) == (
        (f"{STYLE_TRIGGER}, a fox", 0.7),
        ("rain", -0.3),
    )


def test_unknown_style_and_bad_weight_are_refused_with_what_exists(extras_engine: Engine) -> None:
    with pytest.raises(InvalidTask, match="'pastel' is not available on this worker; available: "):
        extras_engine.render(RenderTask(request(loras=(("pastel", 1.0),)), seed=1))
    with pytest.raises(InvalidTask, match=r"LoRA weight must be between 0 and 2, got 2\.5"):
        extras_engine.render(RenderTask(request(loras=(("tiny-style", 2.5),)), seed=1))
    with pytest.raises(InvalidTask, match="at most 4 LoRA styles per prompt, got 5"):
        extras_engine.render(RenderTask(request(loras=(("tiny-style", 1.0),) * 5), seed=1))
