"""Fixtures for the worker tests: an engine over the tiny SDXL, and request helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image

from gpu_worker.engine import Engine
from gpu_worker.models import ModelRegistry
from imagine.settings import Settings
from storage.contract import GenerationRequest
from storage.sampling import sampling_plan

_diffusers: Any = diffusers
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


def diffusers_grid(
    pipe: Any, req: GenerationRequest, seed: int, **inputs: Any
) -> list[Image.Image]:
    """The 64x64 grid a plain diffusers ``pipe`` paints for ``req`` with the engine's scheduler
    (DPM++ 2M Karras) and one generator per image from ``seed``: what the engine must match."""
    pipe.scheduler = _diffusers.DPMSolverMultistepScheduler.from_config(
        pipe.scheduler.config, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
    )
    pipe.set_progress_bar_config(disable=True)
    plan = sampling_plan(req)
    images: list[Image.Image] = pipe(
        prompt=req.prompt + plan.style_suffix,
        num_images_per_prompt=4,
        generator=[torch.Generator().manual_seed(seed + i) for i in range(4)],
        guidance_scale=plan.guidance_scale,
        num_inference_steps=req.steps,
        width=64,
        height=64,
        **inputs,
    ).images
    return images
