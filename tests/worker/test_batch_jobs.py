"""Batched jobs through the worker loop: fair claims, one call, each job finished on its own."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from gpu_worker.batching import BatchEngine
from gpu_worker.engine import Engine
from gpu_worker.loop import Worker
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderTask
from imagine.settings import Settings
from storage.contract import Job, JobStatus
from storage.db import Database
from storage.images import FileImageStore
from storage.queue import JobQueue
from storage.quotas import Quotas
from tests.bot.harness import eventually
from tests.worker.conftest import pixels
from tests.worker.holding import HoldingEngine
from tests.worker.test_loop import (
    LIMITS,
    holding_worker,
    serve_until_empty,
    spec,
    wait_until_finished,
    worker_settings,
)

ALICE, BOB, CAROL = 2001, 2002, 2003


@pytest.fixture(scope="module")
def batch_engine(tiny_settings: Settings) -> BatchEngine:
    engine = BatchEngine(ModelRegistry(tiny_settings.engine()), cpu_threads=1)
    engine.prepare()
    return engine


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    db = await Database.open(database_url)
    try:
        yield {
            "db": db,
            "queue": JobQueue(db, lease_seconds=30, max_attempts=3, limits=LIMITS),
            "quotas": Quotas(db, LIMITS),
            "images": FileImageStore(tmp_path / "data" / "images"),
        }
    finally:
        await db.close()


def batching_worker(
    services: dict[str, Any], engine: Any, settings: Settings, batch: int = 4, **more: Any
) -> Worker:
    return Worker(
        settings.model_copy(update={"max_batch_jobs": batch}).worker(),
        queue=services["queue"],
        images=services["images"],
        engine=engine,
        **more,
    )


async def enqueue(queue: JobQueue, user: int, *prompts: str, **changes: Any) -> list[Job]:
    specs = [spec(prompt) for prompt in prompts]
    if changes:
        import dataclasses

        specs = [
            dataclasses.replace(s, request=dataclasses.replace(s.request, **changes)) for s in specs
        ]
    return await queue.enqueue(user, specs, interaction_id=user * 100 + len(prompts))


async def test_a_batch_is_fair_and_each_job_is_finished_charged_and_stored_alone(
    services: dict[str, Any],
    batch_engine: BatchEngine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    # Alice queued four jobs before Bob and Carol queued one each.
    alice = await enqueue(queue, ALICE, "a red fox", "a calm sea", "a tall tree", "a small boat")
    (bob,) = await enqueue(queue, BOB, "a lighthouse")
    (carol,) = await enqueue(queue, CAROL, "a teapot")
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    await serve_until_empty(batching_worker(services, batch_engine, settings))

    done = {job.id: await queue.get(job.id) for job in [*alice, bob, carol]}
    assert all(job.status is JobStatus.SUCCEEDED for job in done.values())
    # The fair order hands out each user's oldest job first: Alice's first two, Bob's and
    # Carol's shared the first call; Alice's later ones waited, as they would without batching.
    first = [alice[0].id, bob.id, carol.id, alice[1].id]
    for job_id in first:
        assert (done[job_id].rendered or {}).get("batch") == {"jobs": 4, "images": 16}
    for job in alice[2:]:
        assert (done[job.id].rendered or {}).get("batch", {}).get("jobs", 1) < 4
        started = done[job.id].started_at
        assert started is not None and all(
            started > (done[other].started_at or started) for other in first
        )
    for job in done.values():
        records = sorted(await queue.images(job.id), key=lambda r: r.index)
        assert [r.index for r in records] == [-1, 0, 1, 2, 3]
        assert [r.seed for r in records[1:]] == [job.seed + i for i in range(4)]
        assert job.gpu_seconds is not None and job.gpu_seconds > 0 and job.progress == 100
    # Bob's images are what his job alone renders.
    alone = batch_engine.render(RenderTask(bob.request, seed=bob.seed))
    stored = sorted(await queue.images(bob.id), key=lambda r: r.index)[1:]
    for record, image in zip(stored, alone.images, strict=True):
        with Image.open(Path(record.path)) as png:
            assert np.abs(pixels(png) - pixels(image)).max() <= 2
    quotas: Quotas = services["quotas"]
    assert [(await quotas.status(user)).used for user in (ALICE, BOB, CAROL)] == [16, 4, 4]


async def test_an_incompatible_job_is_given_back_and_keeps_its_place_in_line(
    services: dict[str, Any],
    batch_engine: BatchEngine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    alice = await enqueue(queue, ALICE, "a red fox", "a calm sea", "a tall tree")
    (bob,) = await enqueue(queue, BOB, "a wide lighthouse", width=1344, height=768, aspect="16:9")
    (carol,) = await enqueue(queue, CAROL, "a teapot")
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    await serve_until_empty(batching_worker(services, batch_engine, settings))

    done = {job.id: await queue.get(job.id) for job in [*alice, bob, carol]}
    assert all(job.status is JobStatus.SUCCEEDED for job in done.values())
    for job_id in (alice[0].id, carol.id, alice[1].id):
        assert (done[job_id].rendered or {}).get("batch") == {"jobs": 3, "images": 12}
    # Bob's wide job could not share that call; it went back without spending an attempt and
    # was the next claimed, before Alice's third job.
    wide = done[bob.id]
    assert "batch" not in (wide.rendered or {}) and wide.attempts == 1
    third = done[alice[2].id].started_at
    assert wide.started_at is not None and third is not None
    assert wide.started_at < third
    assert [r.width for r in await queue.images(bob.id) if r.index == 0] == [88]


async def test_cancelling_one_job_of_a_batch_renders_the_others_without_it(
    services: dict[str, Any],
    batch_engine: BatchEngine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    jobs = [
        (await enqueue(queue, user, prompt))[0]
        for user, prompt in ((ALICE, "a red fox"), (BOB, "a calm sea"), (CAROL, "a tree"))
    ]
    holding = HoldingEngine(batch_engine)
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    worker = batching_worker(services, holding, settings, progress_interval=0.2)
    run = asyncio.create_task(serve_until_empty(worker))
    assert await asyncio.to_thread(holding.started.wait, 60)
    running = [await queue.get(job.id) for job in jobs]
    assert all(job.status is JobStatus.RUNNING and job.lease_owner for job in running)

    async def first_step_reported() -> Job | None:
        job = await queue.get(jobs[1].id)
        return job if job.progress == 33 and job.preview is not None else None

    # Each job of the batch reports its own first step (a cancel seen on a heartbeat first
    # would end the job before its pending report is written).
    await eventually(first_step_reported, within=30)
    await queue.request_cancel(jobs[1].id, user_id=BOB)
    await run

    cancelled = await queue.get(jobs[1].id)
    assert cancelled.status is JobStatus.CANCELLED and await queue.images(jobs[1].id) == []
    assert holding.steps_after_hold == 0  # the shared call stopped at its next step
    quotas: Quotas = services["quotas"]
    assert (await quotas.status(BOB)).used == 0
    for job in (jobs[0], jobs[2]):
        done = await queue.get(job.id)
        assert done.status is JobStatus.SUCCEEDED and done.attempts == 1
        assert (done.rendered or {}).get("batch") == {"jobs": 2, "images": 8}
        assert (await quotas.status(job.user_id)).used == 4


@pytest.mark.slow
async def test_a_worker_killed_mid_batch_loses_no_job_and_charges_each_once(
    services: dict[str, Any],
    batch_engine: BatchEngine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    jobs = [
        (await enqueue(queue, user, prompt))[0]
        for user, prompt in ((ALICE, "a red fox"), (BOB, "a calm sea"), (CAROL, "a tree"))
    ]
    settings = worker_settings(
        tiny_settings, database_url, tmp_path, lease_seconds=2.0, max_batch_jobs=3
    )
    async with holding_worker(settings, "doomed") as proc:
        held = [await queue.get(job.id) for job in jobs]
        assert [(job.status, job.lease_owner) for job in held] == [
            (JobStatus.RUNNING, "doomed")
        ] * 3
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL

    short_lease = JobQueue(services["db"], lease_seconds=2.0, max_attempts=3, limits=LIMITS)
    stop = asyncio.Event()
    rescuer = Worker(
        settings.worker(),
        queue=short_lease,
        images=services["images"],
        engine=batch_engine,
        worker_id="rescuer",
    )
    serving = asyncio.create_task(rescuer.run(stop))
    try:
        done = [await wait_until_finished(queue, services["db"], job.id) for job in jobs]
    finally:
        stop.set()
        await asyncio.wait_for(serving, 60)
    quotas: Quotas = services["quotas"]
    for job in done:
        assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 2)
        assert sorted(r.index for r in await queue.images(job.id)) == [-1, 0, 1, 2, 3]
        assert (await quotas.status(job.user_id)).used == 4  # charged once


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"IMAGINE_MAX_BATCH_JOBS": "0"}, "max_batch_jobs must be from 1 \\(no batching\\) to 8"),
        (
            {"IMAGINE_MAX_BATCH_JOBS": "9"},
            "max_batch_jobs must be from 1 \\(no batching\\) to 8, got 9",
        ),
        (
            {"IMAGINE_MAX_BATCH_JOBS": "2", "IMAGINE_COMPILE": "true"},
            "cannot be combined with compile",
        ),
    ],
)
def test_max_batch_jobs_is_checked_with_a_clear_message(
    values: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings.load(values)
    assert Settings.load({}).max_batch_jobs == 1


async def test_a_worker_refuses_batching_with_an_engine_that_cannot(
    services: dict[str, Any], engine: Engine, tiny_settings: Settings
) -> None:
    with pytest.raises(ValueError, match="renders one job per call"):
        batching_worker(services, engine, tiny_settings, batch=2)
    with pytest.raises(ValueError, match="from 1 \\(no batching\\) to 8, got 12"):
        batching_worker(services, engine, tiny_settings.model_copy(), batch=12)
