"""Wake-ups: a waiting worker learns about new jobs at once; the timeout is the fallback."""

from __future__ import annotations

import asyncio
import time

from storage.db import Database
from storage.queue import JobQueue
from storage.quotas import Quotas
from tests.storage.helpers import spec

ALICE = 1001


async def test_waiting_worker_wakes_on_enqueue_from_another_connection(
    database_url: str, db: Database
) -> None:
    producer_db = db
    worker_db = (
        await Database.open(database_url) if db.dialect == "postgresql" else db
    )  # SQLite wake-ups are in-process, so the worker shares the producer's handle there
    try:
        worker_queue = JobQueue(worker_db)
        producer = JobQueue(producer_db)
        await worker_db.listen()
        await producer_db.listen()
        assert await worker_queue.claim("w") == []
        waiter = asyncio.create_task(worker_db.wait_for_job(30))
        started = time.perf_counter()
        [job] = await producer.enqueue(ALICE, [spec(0)], interaction_id=None)
        await asyncio.wait_for(waiter, 10)
        assert time.perf_counter() - started < 5  # far below the 30 s poll
        assert [j.id for j in await worker_queue.claim("w")] == [job.id]

        delivery = asyncio.create_task(producer_db.wait_for_delivery(30))
        await worker_queue.finish(job.id, "w", [], 0.1)
        await asyncio.wait_for(delivery, 10)
    finally:
        if worker_db is not db:
            await worker_db.close()


async def test_wait_returns_at_timeout_without_news(db: Database) -> None:
    await db.listen()
    started = time.perf_counter()
    await db.wait_for_job(0.05)
    assert 0.04 <= time.perf_counter() - started < 2


async def test_first_wait_on_a_new_listener_returns_at_once(database_url: str) -> None:
    fresh = await Database.open(database_url)
    try:
        if fresh.dialect == "postgresql":
            # Nothing was listening before this call, so it returns for the caller to look.
            await asyncio.wait_for(fresh.wait_for_job(30), 5)
        assert not await fresh.listen()  # listening now (or in-process): nothing was missed
    finally:
        await fresh.close()


async def test_waiting_worker_wakes_when_a_capped_user_gets_a_free_slot(
    database_url: str, db: Database, quotas: Quotas
) -> None:
    await quotas.set_caps(ALICE, max_concurrent=1, max_queued=None)
    worker_db = await Database.open(database_url) if db.dialect == "postgresql" else db
    try:
        owner, waiting = JobQueue(db), JobQueue(worker_db)
        await owner.enqueue(ALICE, [spec(0), spec(0)], interaction_id=None)
        [running] = await owner.claim("w1")
        assert await waiting.claim("w2") == []  # Alice is at her cap of 1
        # Start listening (PostgreSQL) or consume the enqueue's wake-up (SQLite): from here on
        # only the finish below can wake the worker before its timeout.
        await worker_db.wait_for_job(0.01)
        waiter = asyncio.create_task(worker_db.wait_for_job(30))
        started = time.perf_counter()
        await owner.finish(running.id, "w1", [], 0.1)
        await asyncio.wait_for(waiter, 10)
        assert time.perf_counter() - started < 5  # far below the 30 s poll
        [next_job] = await waiting.claim("w2")
        assert next_job.user_id == ALICE and next_job.id != running.id
    finally:
        if worker_db is not db:
            await worker_db.close()
