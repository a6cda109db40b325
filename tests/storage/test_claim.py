"""The claim's bookkeeping on SQLite and PostgreSQL: the per-user running counter stays equal to
the user's running jobs through every transition, and running caps hold under parallel claims."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from storage.contract import JobStatus
from storage.db import Database
from storage.queue import JobQueue
from storage.quotas import Quotas
from storage.tables import jobs, users
from tests.plugins.database import FakeClock
from tests.storage.helpers import grid_images, spec

ALICE, BOB = 1001, 1002


async def _counters(db: Database) -> dict[int, tuple[int, int]]:
    """Each user's (counter, actual running jobs)."""
    actual = (
        select(func.count())
        .where(jobs.c.user_id == users.c.id, jobs.c.status == "running")
        .scalar_subquery()
    )
    async with db.read() as conn:
        rows = await conn.execute(select(users.c.id, users.c.running, actual).order_by(users.c.id))
        return {user_id: (counter, real) for user_id, counter, real in rows}


async def _assert_counted(db: Database, expected: dict[int, int]) -> None:
    counters = await _counters(db)
    assert counters == {user: (n, n) for user, n in expected.items()}


async def test_running_counter_follows_every_transition(
    queue: JobQueue, quotas: Quotas, clock: FakeClock
) -> None:
    await quotas.set_caps(ALICE, max_concurrent=10, max_queued=20)
    alices = await queue.enqueue(ALICE, [spec(4) for _ in range(6)], interaction_id=1)
    await queue.enqueue(BOB, [spec(4)], interaction_id=2)
    await _assert_counted(queue.db, {ALICE: 0, BOB: 0})

    claimed = await queue.claim("w1", limit=4)
    assert sorted(job.user_id for job in claimed) == [ALICE, ALICE, ALICE, BOB]
    await _assert_counted(queue.db, {ALICE: 3, BOB: 1})
    assert (await quotas.status(ALICE)).running == 3

    first, second, third = (job for job in claimed if job.user_id == ALICE)
    bobs = next(job for job in claimed if job.user_id == BOB)
    await queue.finish(first.id, "w1", grid_images(first.id, first.seed), 1.0)
    await _assert_counted(queue.db, {ALICE: 2, BOB: 1})
    await queue.fail(second.id, "w1", "CUDA out of memory")  # back to the queue
    await _assert_counted(queue.db, {ALICE: 1, BOB: 1})
    await queue.fail(bobs.id, "w1", "prompt rejected", retry=False)
    await _assert_counted(queue.db, {ALICE: 1, BOB: 0})
    await queue.release(third.id, "w1")
    await _assert_counted(queue.db, {ALICE: 0, BOB: 0})

    again = await queue.claim("w2", limit=3)
    assert len(again) == 3
    await _assert_counted(queue.db, {ALICE: 3, BOB: 0})
    await queue.request_cancel(again[0].id, user_id=ALICE)  # running: only flagged
    await _assert_counted(queue.db, {ALICE: 3, BOB: 0})
    await queue.mark_cancelled(again[0].id, "w2")
    await _assert_counted(queue.db, {ALICE: 2, BOB: 0})
    queued = await queue.user_jobs(ALICE, [JobStatus.QUEUED])
    await queue.request_cancel(queued[0].id, user_id=ALICE)  # queued: cancelled at once
    await _assert_counted(queue.db, {ALICE: 2, BOB: 0})

    clock.advance(61)
    assert await queue.reap_expired() == 2
    await _assert_counted(queue.db, {ALICE: 0, BOB: 0})
    assert {job.id for job in alices} >= {job.id for job in again}


async def test_parallel_claims_and_finishes_keep_caps_and_the_counter_exact(
    queue: JobQueue, quotas: Quotas
) -> None:
    users_ = [2000 + i for i in range(4)]
    for user in users_:
        await quotas.set_caps(user, max_concurrent=2, max_queued=20)
        await queue.enqueue(user, [spec(0) for _ in range(12)], interaction_id=None)
    peaks: dict[int, int] = dict.fromkeys(users_, 0)
    done: list[int] = []

    async def worker(name: str) -> None:
        while claimed := await queue.claim(name, limit=3):
            for job in claimed:
                # Read while this job is still held: its user's running jobs, ours included.
                running = (await _counters(queue.db))[job.user_id][1]
                peaks[job.user_id] = max(peaks[job.user_id], running)
            for job in claimed:
                await queue.finish(job.id, name, [], 0.0)
                done.append(job.id)

    await asyncio.gather(*(worker(f"w{i}") for i in range(8)))
    # Claims may come back empty while another worker holds a row for a moment; drain the rest.
    await worker("drain")
    assert len(done) == len(set(done)) == 48
    assert all(1 <= peak <= 2 for peak in peaks.values())
    await _assert_counted(queue.db, dict.fromkeys(users_, 0))
