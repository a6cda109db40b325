"""Fixtures for the worker tests: an engine over the tiny SDXL, and request helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gpu_worker.engine import Engine
from gpu_worker.models import ModelRegistry
from imagine.settings import Settings
from storage.contract import GenerationRequest

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_settings(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose default model is the tiny SDXL."""
    return Settings.load(
        {},
        model=str(tiny_model_dir),
        data_dir=tmp_path_factory.mktemp("data"),
        model_aliases={"second": str(tiny_model_dir)},
    )


@pytest.fixture(scope="session")
def engine(tiny_settings: Settings) -> Engine:
    """An engine with the tiny model loaded (shared by the session: loading takes a second)."""
    engine = Engine(ModelRegistry(tiny_settings.engine()), cpu_threads=1)
    engine.prepare()
    return engine


@pytest.fixture(scope="session")
def extras_settings(tiny_extras_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings from the tiny model's ``extras.toml`` (profiles, LoRA styles, ...)."""
    return Settings.load(
        {}, config_file=tiny_extras_dir / "extras.toml", data_dir=tmp_path_factory.mktemp("data")
    )


@pytest.fixture(scope="session")
def extras_engine(extras_settings: Settings) -> Engine:
    """An engine over the tiny model and its optional components (shared by the session)."""
    engine = Engine(ModelRegistry(extras_settings.engine()), cpu_threads=1)
    engine.prepare()
    return engine


def request(prompt: str = "a red fox", **changes: Any) -> GenerationRequest:
    """A request as the parser makes it: 1:1 SDXL size, 2 steps unless told otherwise."""
    values: dict[str, Any] = {"segments": ((prompt, 1.0),), "steps": 2}
    values.update(changes)
    return GenerationRequest(prompt=prompt, **values)


def pixels(image: Image.Image) -> np.ndarray:
    """An image as a float array (H, W, 3)."""
    return np.asarray(image.convert("RGB"), dtype=np.float64)
