"""Cross-job batching in the engine: several jobs in one pipeline call, each as if alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gpu_worker.batching import BatchEngine, batch_key, pick_batch
from gpu_worker.engine import Engine
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderResult, RenderTask, StepEvent
from imagine.settings import Settings
from storage.contract import Control, ControlKind, Job, JobKind, JobStatus, SpeedMode
from tests.worker.conftest import pixels, request

# The last step's latents of a job in a batch of 12 images and of the same job alone (4): the
# same noise and conditioning, but kernels sum in another order at another batch size. Measured
# on CPU: about 2.5e-6 of the latents' largest magnitude, the same as between a grid of 4 and
# its images one by one; the tolerance is 1e-5 of it. Images may then move a pixel by a level.
RELATIVE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def batch_engine(tiny_settings: Settings) -> BatchEngine:
    engine = BatchEngine(ModelRegistry(tiny_settings.engine()), cpu_threads=1)
    engine.prepare()
    return engine


def last_latents(engine: Engine, task: RenderTask) -> tuple[RenderResult, torch.Tensor]:
    seen: list[torch.Tensor] = []
    result = engine.render(task, on_step=lambda event: seen.append(event.latents.clone()))
    return result, seen[-1]


def batched(
    engine: BatchEngine, tasks: list[RenderTask]
) -> tuple[list[RenderResult], list[list[StepEvent]]]:
    events: list[list[StepEvent]] = [[] for _ in tasks]

    def recorder(i: int) -> Any:
        return lambda event: events[i].append(
            dataclasses.replace(event, latents=event.latents.clone())
        )

    results = engine.render_batch(tasks, on_steps=[recorder(i) for i in range(len(tasks))])
    return results, events


def test_each_job_of_a_batch_equals_that_job_rendered_alone(batch_engine: BatchEngine) -> None:
    tasks = [
        RenderTask(request("a red fox"), seed=11),
        RenderTask(request("a lighthouse at dusk", chaos=80, negative_prompt="fog"), seed=500),
        RenderTask(request("a:: b::2 teapot", weird=900), seed=7),
    ]
    results, events = batched(batch_engine, tasks)

    for task, result, steps in zip(tasks, results, events, strict=True):
        alone, alone_latents = last_latents(batch_engine, task)
        assert result.seeds == alone.seeds == [task.seed + i for i in range(4)]
        assert result.info["batch"] == {"jobs": 3, "images": 12}
        # Each job saw every step, with its own four images' latents.
        assert [event.step for event in steps] == [1, 2] and steps[-1].total == 2
        scale = alone_latents.abs().max().item()
        torch.testing.assert_close(
            steps[-1].latents, alone_latents, atol=RELATIVE_TOLERANCE * scale, rtol=0
        )
        for ours, theirs in zip(result.images, alone.images, strict=True):
            assert np.abs(pixels(ours) - pixels(theirs)).max() <= 2
    # The call's seconds are shared by image count.
    assert len({round(result.seconds, 9) for result in results}) == 1
    # Different prompts and seeds really are different images.
    assert not np.array_equal(pixels(results[0].images[0]), pixels(results[1].images[0]))


def test_tasks_that_cannot_share_a_call_render_apart_and_unchanged(
    batch_engine: BatchEngine,
) -> None:
    wide = request("a red fox", width=1344, height=768, aspect="16:9")
    tasks = [
        RenderTask(request("a red fox"), seed=3),
        RenderTask(wide, seed=3),
        RenderTask(request("a red fox", steps=3), seed=3),
        RenderTask(request("a blue fox"), seed=4),
        RenderTask(request("a red fox"), seed=3, indices=(2,)),
    ]
    results, _ = batched(batch_engine, tasks)
    assert [r.info.get("batch") for r in results] == [
        {"jobs": 3, "images": 9},
        None,
        None,
        {"jobs": 3, "images": 9},
        {"jobs": 3, "images": 9},
    ]
    assert (results[1].width, results[1].height) == (88, 48)
    assert results[2].steps_run == 3
    for task, result in zip(tasks, results, strict=True):
        alone = batch_engine.render(task)
        for ours, theirs in zip(result.images, alone.images, strict=True):
            assert np.abs(pixels(ours) - pixels(theirs)).max() <= 2


def job(kind: JobKind = JobKind.IMAGINE, **changes: Any) -> Job:
    fields = {k: changes.pop(k) for k in ("input_images", "strength") if k in changes}
    return Job(
        id=changes.pop("id", 1),
        kind=kind,
        status=JobStatus.RUNNING,
        user_id=changes.pop("user_id", 1),
        request=request(**changes),
        seed=1,
        cost=4,
        **fields,
    )


@pytest.mark.parametrize(
    ("other", "shares"),
    [
        ({"prompt": "another prompt", "seed": 99, "chaos": 50, "weird": 10}, True),
        ({"negative_prompt": "blur"}, True),
        ({"kind": JobKind.REROLL}, True),
        ({"width": 1344, "height": 768, "aspect": "16:9"}, False),
        ({"steps": 3}, False),
        ({"stop": 50}, False),
        ({"stylize": 500}, False),
        ({"mode": SpeedMode.TURBO}, False),
        ({"loras": (("tiny-style", 1.0),)}, False),
        ({"model": "second"}, False),
        ({"tile": True}, False),
        ({"image_urls": ("https://example.com/a.png",)}, False),
        ({"input_images": ("ab" * 32,)}, False),
        ({"control": Control(ControlKind.CANNY)}, False),
        ({"kind": JobKind.VARIATION, "strength": 0.85}, False),
        ({"kind": JobKind.UPSCALE}, False),
    ],
)
def test_which_jobs_may_share_a_call(other: dict[str, Any], shares: bool) -> None:
    assert (batch_key(job()) == batch_key(job(**other))) is shares


def test_a_batch_is_the_first_job_and_the_compatible_ones_after_it() -> None:
    jobs = [
        job(id=1, user_id=1),
        job(id=2, user_id=2, width=1344, height=768),
        job(id=3, user_id=3, prompt="a boat"),
        job(id=4, user_id=1, steps=3),
        job(id=5, user_id=2),
    ]
    batch, rest = pick_batch(jobs)
    assert [j.id for j in batch] == [1, 3, 5]
    assert [j.id for j in rest] == [2, 4]
    # A first job that renders alone takes nobody with it.
    lone = [job(id=6, kind=JobKind.UPSCALE), job(id=7), job(id=8)]
    assert [[j.id for j in part] for part in pick_batch(lone)] == [[6], [7, 8]]


def test_jobs_of_another_family_render_alone(
    tiny_model_dir: Path, tiny_cascade_dir: Path, tmp_path: Path
) -> None:
    settings = Settings.load(
        {},
        model=str(tiny_model_dir),
        model_aliases={"cascade": str(tiny_cascade_dir)},
        data_dir=tmp_path,
    )
    engine = BatchEngine(ModelRegistry(settings.engine()), cpu_threads=1)
    engine.prepare()
    tasks = [RenderTask(request(f"fox {n}", model="cascade", steps=2), seed=n) for n in (1, 2)]
    results, _ = batched(engine, tasks)
    for task, result in zip(tasks, results, strict=True):
        assert result.info["family"] == "cascade" and "batch" not in result.info
        alone = engine.render(task)
        for ours, theirs in zip(result.images, alone.images, strict=True):
            assert np.abs(pixels(ours) - pixels(theirs)).max() <= 1
