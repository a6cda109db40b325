"""``imagine run`` while another connection holds SQLite's write lock past the busy timeout.

The service is started as ``imagine run`` starts it (``serve`` with the worker as companion,
bot and worker in one event loop on one SQLite file); only the engine is the tiny SDXL held at
its last step, so the test can take the lock exactly when the worker is about to finish.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.runner import serve
from bot.services import Services
from imagine.settings import Settings
from storage.bundle import open_storage
from storage.contract import Job, JobStatus
from storage.queue import JobQueue
from tests.bot.harness import ephemeral_reply, eventually
from tests.fakediscord import FakeDiscord, User
from tests.worker.holding import HoldingEngine

pytestmark = pytest.mark.slow

BUSY_TIMEOUT = 0.1
RETRY_SECONDS = 0.3


class WriteLock:
    """The test's own SQLite connection, holding the write lock (``BEGIN IMMEDIATE``)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    async def take(self) -> None:
        await asyncio.to_thread(self._conn.execute, "BEGIN IMMEDIATE")

    async def release(self) -> None:
        await asyncio.to_thread(self._conn.execute, "ROLLBACK")
        await asyncio.to_thread(self._conn.close)


async def test_a_write_lock_past_the_busy_timeout_delays_the_job_but_never_stops_the_service(
    fake_discord: FakeDiscord,
    bot_environ: dict[str, str],
    tiny_model_dir: Path,
    alice: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import torch

    from gpu_worker.engine import Engine
    from gpu_worker.loop import run_worker
    from gpu_worker.models import ModelRegistry

    torch.set_num_threads(1)
    caplog.set_level(logging.WARNING)
    settings = Settings.load(
        {
            **bot_environ,
            "IMAGINE_MODEL": str(tiny_model_dir),
            "IMAGINE_DATABASE_BUSY_TIMEOUT": str(BUSY_TIMEOUT),
            "IMAGINE_DATABASE_RETRY_SECONDS": str(RETRY_SECONDS),
        }
    )
    release = threading.Event()
    engine = HoldingEngine(
        Engine(ModelRegistry(settings.engine())), at_last_step=True, resume=release
    )

    async def worker(services: Services, stop: asyncio.Event) -> None:
        await run_worker(
            settings.worker(),
            stop=stop,
            queue=services.queue,
            images=services.images,
            engine=engine,
            worker_id="locked-out",
        )

    service = asyncio.create_task(serve(settings.bot(), migrate=True, companions=[worker]))
    lock = WriteLock(settings.data_dir / "imagine.db")
    try:
        await fake_discord.wait_for(
            lambda: any(c.name == "imagine" for c in fake_discord.synced_commands()),
            timeout=60,
            what="the bot's commands",
        )
        await fake_discord.wait_until_connected(60)
        command = await fake_discord.invoke_command(
            "imagine", {"prompt": "a patient fox --seed 3"}, user=alice
        )
        assert await ephemeral_reply(fake_discord, command) == "Queued 1 job: #1."
        message = await fake_discord.wait_for_message(
            lambda m: m.content.startswith("**a patient fox")
        )
        assert await asyncio.to_thread(engine.started.wait, 120), "the render never started"

        await lock.take()
        release.set()  # the render ends; storing it needs the write lock the test holds

        async def worker_retrying() -> bool | None:
            return (
                any(
                    r.name == "gpu_worker.waits" and "job 1: finishing" in r.getMessage()
                    for r in caplog.records
                )
                or None
            )

        # Storage retried the lock past the busy timeout, gave up after its budget, and the
        # worker keeps the finished job and tries again.
        await eventually(worker_retrying, within=60)
        assert any(
            r.name == "storage.db" and "database is locked" in r.getMessage()
            for r in caplog.records
        )
        assert not service.done()
        await lock.release()

        await fake_discord.wait_for(
            lambda: message.content.endswith("(fast)") and len(message.buttons) == 9,
            timeout=60,
            what="the result after the lock",
        )
        async with await open_storage(settings.storage()) as storage:
            job = await eventually(lambda: _delivered(storage.queue, 1))
            assert (job.status, job.attempts) == (JobStatus.SUCCEEDED, 1)  # rendered once
            assert len(await storage.queue.images(1)) == 5  # finished once
            assert (await storage.quotas.status(alice.id)).used == 4  # charged once

        # The process is still up and serving.
        assert not service.done()
        again = await fake_discord.invoke_command("imagine", {"prompt": "another fox"}, user=alice)
        assert await ephemeral_reply(fake_discord, again) == "Queued 1 job: #2."
        assert not service.done()
    finally:
        release.set()
        service.cancel()
        await asyncio.gather(service, return_exceptions=True)


async def _delivered(queue: JobQueue, job_id: int) -> Job | None:
    job = await queue.get(job_id)
    return job if job.delivered_at is not None else None
