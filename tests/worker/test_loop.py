"""The worker loop against real storage (SQLite and PostgreSQL) and the tiny SDXL."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gpu_worker.engine import Engine
from gpu_worker.loop import Worker
from imagine.settings import Settings
from storage.contract import GenerationRequest, Job, JobKind, JobSpec, JobStatus, SpeedMode
from storage.db import Database
from storage.images import FileImageStore
from storage.limits import Limits
from storage.metrics import Metrics
from storage.queue import JobQueue
from storage.quotas import Quotas
from tests.worker.holding import HoldingEngine

USER = 1001
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LIMITS = Limits(images=100, period="day", max_concurrent=3, max_queued=10)


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """Database, queue (real clock), quotas and image store for one test."""
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


def spec(prompt: str = "a red fox", **job: Any) -> JobSpec:
    kind = job.pop("kind", JobKind.IMAGINE)
    cost = job.pop("cost", 1 if kind is JobKind.UPSCALE else 4)
    request = GenerationRequest(prompt=prompt, segments=((prompt, 1.0),), steps=3)
    return JobSpec(kind=kind, request=request, cost=cost, **job)


def worker_settings(
    tiny_settings: Settings, database_url: str, tmp_path: Path, **more: Any
) -> Settings:
    return tiny_settings.model_copy(
        update={"database_url": database_url, "data_dir": tmp_path / "data", **more}
    )


async def serve_until_empty(worker: Worker) -> None:
    await asyncio.wait_for(worker.run(asyncio.Event(), once=True), 120)


async def test_queued_job_is_rendered_stored_and_succeeds(
    services: dict[str, Any],
    engine: Engine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    (job,) = await queue.enqueue(USER, [spec()], interaction_id=1)
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    metrics = Metrics()
    worker = Worker(
        settings.worker(),
        queue=queue,
        images=services["images"],
        engine=engine,
        worker_id="w-1",
        metrics=metrics,
    )
    await serve_until_empty(worker)

    done = await queue.get(job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.progress == 100 and done.gpu_seconds is not None and done.gpu_seconds > 0
    records = sorted(await queue.images(job.id), key=lambda r: r.index)
    assert [r.index for r in records] == [-1, 0, 1, 2, 3]
    assert [r.seed for r in records[1:]] == [job.seed + i for i in range(4)]
    for record in records:
        data = await services["images"].get(record.sha256)
        assert hashlib.sha256(data).hexdigest() == record.sha256
        with Image.open(Path(record.path)) as image:
            assert image.format == "PNG"
            assert image.size == (record.width, record.height)
    assert (records[0].width, records[0].height) == (128, 128)  # the 2x2 grid
    assert (records[1].width, records[1].height) == (64, 64)
    stats = await queue.stats()
    assert [w.id for w in stats.workers] == ["w-1"]
    assert stats.workers[0].model == str(tiny_settings.model)
    assert (await services["quotas"].status(USER)).used == 4
    samples = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
    }
    assert samples[("imagine_jobs_total", ("imagine", "succeeded"))] == 1
    assert samples[("imagine_gpu_seconds_total", ())] == pytest.approx(done.gpu_seconds)
    assert samples[("imagine_job_run_seconds_count", ("imagine",))] == 1


async def test_variations_and_upscales_start_from_the_stored_parent_image(
    services: dict[str, Any],
    engine: Engine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    worker = Worker(settings.worker(), queue=queue, images=services["images"], engine=engine)
    (parent,) = await queue.enqueue(USER, [spec()], interaction_id=1)
    await serve_until_empty(worker)
    variation, upscale = await queue.enqueue(
        USER,
        [
            spec(kind=JobKind.VARIATION, parent_job_id=parent.id, parent_index=2, strength=0.5),
            spec(kind=JobKind.UPSCALE, parent_job_id=parent.id, parent_index=1, strength=0.2),
        ],
        interaction_id=2,
    )
    worker = Worker(settings.worker(), queue=queue, images=services["images"], engine=engine)
    await serve_until_empty(worker)
    assert (await queue.get(variation.id)).status is JobStatus.SUCCEEDED
    assert len(await queue.images(variation.id)) == 5
    assert (await queue.get(upscale.id)).status is JobStatus.SUCCEEDED
    (single,) = await queue.images(upscale.id)
    assert (single.index, single.width, single.height) == (0, 128, 128)


async def test_engine_error_fails_the_job_with_its_message_and_refunds(
    services: dict[str, Any],
    engine: Engine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    missing = "ab" * 32
    bad, good = await queue.enqueue(
        USER, [spec(input_images=(missing,)), spec("a calm sea")], interaction_id=5
    )
    assert (await services["quotas"].status(USER)).used == 8
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    worker = Worker(settings.worker(), queue=queue, images=services["images"], engine=engine)
    await serve_until_empty(worker)

    failed = await queue.get(bad.id)
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    public, detail = failed.error.split("\n")
    # About the request itself: the user is told as it is; the type stays for the operator.
    assert public == "input image abababababab... is not in the image store"
    assert detail.startswith(f"InvalidTask: {public} (from BlobNotFound: ")
    assert failed.attempts == 1  # an error about the job itself is not retried
    # The loop kept serving, and only the job that succeeded is charged.
    assert (await queue.get(good.id)).status is JobStatus.SUCCEEDED
    assert (await services["quotas"].status(USER)).used == 4


async def test_cancel_during_a_render_stops_at_the_next_step_and_refunds(
    services: dict[str, Any],
    engine: Engine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    (job,) = await queue.enqueue(USER, [spec()], interaction_id=9)
    holding = HoldingEngine(engine)
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    worker = Worker(
        settings.worker(),
        queue=queue,
        images=services["images"],
        engine=holding,
        progress_interval=0.2,
    )
    run = asyncio.create_task(serve_until_empty(worker))
    assert await asyncio.to_thread(holding.started.wait, 60)
    running = await queue.get(job.id)
    assert running.status is JobStatus.RUNNING
    await queue.request_cancel(job.id, user_id=USER)
    await run

    cancelled = await queue.get(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert holding.steps_after_hold == 0  # stopped at the very next step
    # Step 1 was reported before the hold, with a preview decoded from the latents.
    assert cancelled.progress == 33
    assert cancelled.preview is not None
    with Image.open(io.BytesIO(cancelled.preview)) as preview:
        assert preview.format == "JPEG"
        # One pixel per latent cell, 2x2 of the tiny model's 8x8 latents (SDXL's 128x128
        # latents make 256 px, scaled down to 128).
        assert preview.size == (16, 16)
    assert await queue.images(job.id) == []
    assert (await services["quotas"].status(USER)).used == 0


async def test_stop_stores_the_rendered_job_and_gives_back_the_next_one(
    services: dict[str, Any],
    engine: Engine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    first, second = await queue.enqueue(USER, [spec(), spec("a calm sea")], interaction_id=21)
    holding = HoldingEngine(engine, at_last_step=True)
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    worker = Worker(settings.worker(), queue=queue, images=services["images"], engine=holding)
    stop = asyncio.Event()
    serving = asyncio.create_task(worker.run(stop))
    assert await asyncio.to_thread(holding.started.wait, 60)
    # The last step claimed the next job so the device would not wait for it.
    prefetch = worker._next
    assert prefetch is not None
    assert await asyncio.wait_for(asyncio.shield(prefetch), 30)  # the second job, claimed
    assert (await queue.get(second.id)).status is JobStatus.RUNNING
    stop.set()
    await asyncio.wait_for(serving, 60)

    # The render past its last step completes and is stored; the claimed one goes back.
    assert (await queue.get(first.id)).status is JobStatus.SUCCEEDED
    back = await queue.get(second.id)
    assert (back.status, back.lease_owner, back.attempts) == (JobStatus.QUEUED, None, 0)


# -- real worker processes ---------------------------------------------------------------------


def process_env(settings: Settings, worker_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_")}
    env.update(
        IMAGINE_DATABASE_URL=str(settings.database_url),
        IMAGINE_DATA_DIR=str(settings.data_dir),
        IMAGINE_MODEL=settings.model,
        IMAGINE_LEASE_SECONDS=str(settings.lease_seconds),
        IMAGINE_MAX_BATCH_JOBS=str(settings.max_batch_jobs),
        IMAGINE_WORKER_ID=worker_id,
        IMAGINE_LOG_LEVEL="WARNING",
    )
    return env


@contextlib.asynccontextmanager
async def holding_worker(settings: Settings, worker_id: str) -> AsyncIterator[Any]:
    """A worker process whose first render holds at step 1; yields once it is held.

    A line written to its stdin resumes the held render.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.worker.holding",
        env=process_env(settings, worker_id),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=PROJECT_ROOT,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line.startswith(b"started"), (line, await proc.stderr.read())  # type: ignore[union-attr]
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def wait_for_line(stream: asyncio.StreamReader | None, text: str) -> str:
    """The first line of ``stream`` that contains ``text``."""
    assert stream is not None

    async def find() -> str:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"the stream ended without a line containing {text!r}")
            if text in line:
                return line

    return await asyncio.wait_for(find(), 60)


async def wait_until_finished(queue: JobQueue, db: Database, job_id: int) -> Job:
    async def finished() -> Job:
        while True:
            job = await queue.get(job_id)
            if job.status.finished:
                return job
            await db.wait_for_delivery(1.0)

    return await asyncio.wait_for(finished(), 120)


@pytest.mark.slow
async def test_killed_worker_job_is_finished_once_by_another_worker(
    services: dict[str, Any],
    engine: Engine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    settings = worker_settings(tiny_settings, database_url, tmp_path, lease_seconds=2.0)
    (job,) = await queue.enqueue(USER, [spec()], interaction_id=11)
    async with holding_worker(settings, "doomed") as proc:
        held = await queue.get(job.id)
        assert (held.status, held.lease_owner) == (JobStatus.RUNNING, "doomed")
        proc.send_signal(signal.SIGKILL)
        assert await proc.wait() == -signal.SIGKILL

    # The second worker reaps the expired lease and runs the job again.
    short_lease = JobQueue(services["db"], lease_seconds=2.0, max_attempts=3, limits=LIMITS)
    stop = asyncio.Event()
    rescuer = Worker(
        settings.worker(),
        queue=short_lease,
        images=services["images"],
        engine=engine,
        worker_id="rescuer",
    )
    serving = asyncio.create_task(rescuer.run(stop))
    try:
        done = await wait_until_finished(queue, services["db"], job.id)
    finally:
        stop.set()
        await asyncio.wait_for(serving, 60)
    assert done.status is JobStatus.SUCCEEDED
    assert done.lease_owner is None or done.lease_owner == "rescuer"
    assert done.attempts == 2
    assert sorted(r.index for r in await queue.images(job.id)) == [-1, 0, 1, 2, 3]
    assert (await services["quotas"].status(USER)).used == 4  # charged once


@pytest.mark.slow
async def test_a_second_sigterm_gives_the_running_job_back_and_exits_0(
    services: dict[str, Any],
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    settings = worker_settings(tiny_settings, database_url, tmp_path, lease_seconds=30.0)
    (job,) = await queue.enqueue(USER, [spec()], interaction_id=12)
    async with holding_worker(settings, "leaving") as proc:
        proc.send_signal(signal.SIGTERM)  # the first one drains: the render would go on
        await wait_for_line(proc.stderr, "SIGTERM: draining")
        proc.send_signal(signal.SIGTERM)
        await wait_for_line(proc.stderr, "SIGTERM again: giving back the running job")
        code = await asyncio.wait_for(proc.wait(), 60)
        stderr = await proc.stderr.read()
    assert code == 0, stderr.decode()
    back = await queue.get(job.id)
    assert back.status is JobStatus.QUEUED
    assert back.lease_owner is None
    assert back.attempts == 0  # giving a job back spends no attempt
    assert (await services["quotas"].status(USER)).used == 4  # still reserved, not refunded


async def test_a_turbo_style_job_records_what_painted_it_and_its_gpu_seconds(
    services: dict[str, Any],
    extras_engine: Engine,
    extras_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    request = GenerationRequest(
        prompt="a fox",
        segments=(("a fox", 1.0),),
        steps=30,
        mode=SpeedMode.TURBO,
        loras=(("tiny-style", 0.8),),
    )
    (job,) = await queue.enqueue(
        USER, [JobSpec(kind=JobKind.IMAGINE, request=request, cost=4)], interaction_id=77
    )
    settings = worker_settings(extras_settings, database_url, tmp_path)
    worker = Worker(
        settings.worker(),
        queue=queue,
        images=services["images"],
        engine=extras_engine,
        worker_id="w-x",
    )
    await serve_until_empty(worker)
    done = await queue.get(job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.rendered == {"profile": "turbo", "loras": [["tiny-style", 0.8]]}
    assert done.request.loras == (("tiny-style", 0.8),)
    assert done.gpu_seconds is not None and done.gpu_seconds > 0
    [registered] = (await queue.stats()).workers
    assert registered.capabilities is not None
    assert sorted(registered.capabilities["profiles"]) == ["draft", "turbo"]
    assert registered.capabilities["loras"] == {
        "tiny-style": {"trigger": "tinystyle", "weight": 0.8}
    }


async def test_a_chinese_prompt_job_stores_the_original_and_the_english(
    services: dict[str, Any],
    extras_engine: Engine,
    extras_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    fox = "一只红色的狐狸"
    chinese = GenerationRequest(prompt=fox, segments=((fox, 1.0),), steps=2)
    notr = dataclasses.replace(chinese, translate=False)
    jobs = await queue.enqueue(
        USER,
        [JobSpec(kind=JobKind.IMAGINE, request=r, cost=4) for r in (chinese, notr)],
        interaction_id=78,
    )
    settings = worker_settings(extras_settings, database_url, tmp_path)
    worker = Worker(
        settings.worker(),
        queue=queue,
        images=services["images"],
        engine=extras_engine,
        worker_id="w-zh",
    )
    await serve_until_empty(worker)
    translated, kept = [await queue.get(job.id) for job in jobs]
    assert translated.status is kept.status is JobStatus.SUCCEEDED
    assert translated.request.prompt == fox
    assert translated.rendered is not None
    english = translated.rendered["translation"]["prompt"]
    assert english and english != fox
    assert kept.request.prompt == fox and "translation" not in (kept.rendered or {})
