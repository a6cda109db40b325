"""``torch.compile`` of the tiny UNet with inductor on CPU: same images, warm-up before the first
job, bucketed sizes that never recompile, and compiles that a job waited for logged.

Inductor compiles C++ kernels here (it needs a C compiler, as CPU inductor always does); each new
shape costs tens of seconds on two cores, so these tests are slow.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gpu_worker.engine import Engine
from gpu_worker.fastpath import compiled_graphs
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderTask
from imagine.settings import Settings
from storage.sampling import sampling_plan
from tests.worker.conftest import pixels, request

pytestmark = pytest.mark.slow


def compiled_engine(tiny_model_dir: Path, **settings: Any) -> Engine:
    options = Settings.load({}, model=str(tiny_model_dir), compile=True, **settings)
    engine = Engine(ModelRegistry(options.engine()), cpu_threads=1)
    engine.prepare()
    return engine


def grid(engine: Engine, seed: int = 7) -> np.ndarray:
    result = engine.render(RenderTask(request("a lighthouse at dusk", steps=3), seed=seed))
    return np.stack([pixels(image) for image in result.images])


def test_compiled_unet_gives_the_eager_images_and_a_compile_a_job_waits_for_is_logged(
    engine: Engine, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gpu_worker")
    compiled = compiled_engine(tiny_model_dir, warmup=False)
    assert "UNet compiled with torch.compile (mode default, static shapes" in caplog.text
    ours, theirs = grid(compiled), grid(engine)
    # Tolerance: inductor reorders float32 sums, so a pixel may round the other way; measured
    # max 1 grey level and mean 0.0001.
    assert np.abs(ours - theirs).max() <= 2 and np.abs(ours - theirs).mean() < 0.05
    # Without a warm-up that first grid waited for the compile, and the log says so.
    assert compiled.compiles.recompiles >= 1
    assert "during a 64x64 render of 4 image(s): the warm-up did not cover that shape" in (
        caplog.text
    )


def test_warm_up_compiles_every_bucket_before_the_first_job_and_buckets_never_recompile(
    tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gpu_worker")
    compiled = compiled_engine(tiny_model_dir, size_buckets=["1024x1024"], warmup_steps=1)
    warmed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("warm-up ")]
    assert warmed[0].startswith("warm-up 1024x1024, 4 image(s): rendered 64x64 in ")
    assert warmed[1].startswith("warm-up 1024x1024, 1 image(s): rendered 64x64 in ")
    assert all("graph(s) compiled" in line for line in warmed[:2])
    assert warmed[2].startswith("warm-up done in ")
    graphs = compiled_graphs()
    caplog.clear()
    # Other aspect ratios snap to the bucket: the same compiled graph serves them.
    wide = compiled.render(RenderTask(request(width=1344, height=768), seed=1))
    assert (wide.width, wide.height) == (64, 64)
    compiled.render(RenderTask(request(width=1600, height=640), seed=2))
    single = compiled.render(RenderTask(request(), seed=3, indices=(2,)))
    assert len(single.images) == 1
    # A prompt over 75 tokens is encoded in two 77-token chunks: the text length is dynamic.
    long = request("a lighthouse on a cliff at dusk, waves breaking on the rocks below " * 2)
    model = compiled.registry.get()
    plan = sampling_plan(long)
    assert compiled.conditioning(model, plan).prompt_embeds.shape[1] >= 154
    compiled.render(RenderTask(long, seed=4))
    assert compiled_graphs() == graphs and compiled.compiles.recompiles == 0
    assert "recompiled" not in caplog.text and "did not cover" not in caplog.text
