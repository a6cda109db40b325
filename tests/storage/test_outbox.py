"""The delivery outbox on SQLite and PostgreSQL: due jobs only, backoff kept in the row, give-up."""

from __future__ import annotations

from datetime import timedelta

from storage.contract import Job, JobStatus
from storage.db import Database
from storage.limits import Limits
from storage.queue import JobQueue
from storage.quotas import Quotas
from tests.plugins.database import FakeClock
from tests.storage.helpers import grid_images, spec

ALICE, BOB = 1001, 1002


async def _succeeded(queue: JobQueue, user: int = ALICE) -> Job:
    [job] = await queue.enqueue(user, [spec(4)], interaction_id=None)
    [claimed] = await queue.claim("w1")
    assert claimed.id == job.id
    return await queue.finish(job.id, "w1", grid_images(job.id, job.seed), gpu_seconds=1.0)


def _outbox_queue(db: Database, clock: FakeClock, attempts: int = 4) -> JobQueue:
    return JobQueue(
        db,
        limits=Limits(),
        clock=clock,
        delivery_max_attempts=attempts,
        delivery_retry_seconds=2.0,
    )


async def _due(queue: JobQueue) -> list[int]:
    return [job.id for job in await queue.pending_deliveries(limit=50)]


async def test_a_failed_attempt_waits_out_its_backoff_even_across_restarts(
    db: Database, clock: FakeClock
) -> None:
    queue = _outbox_queue(db, clock)
    job = await _succeeded(queue)
    failed = await queue.delivery_failed(job.id, "503 Service Unavailable (error code: 0)")
    assert failed.delivery_attempts == 1
    assert failed.next_delivery_at == clock() + timedelta(seconds=2)
    assert failed.delivery_error == "503 Service Unavailable (error code: 0)"
    assert failed.undeliverable_at is None
    assert await _due(queue) == []

    restarted = _outbox_queue(db, clock)  # a new bot process reads the same row
    clock.advance(1.9)
    assert await _due(restarted) == []
    clock.advance(0.2)
    assert await _due(restarted) == [job.id]
    again = await restarted.delivery_failed(job.id, "timed out")
    assert again.next_delivery_at == clock() + timedelta(seconds=4)  # doubled
    clock.advance(4)
    delivered = await restarted.mark_delivered(job.id)
    assert delivered.delivered_at == clock() and delivered.delivery_attempts == 2
    assert await _due(restarted) == []


async def test_fresh_results_go_before_retries(db: Database, clock: FakeClock) -> None:
    queue = _outbox_queue(db, clock)
    retried = await _succeeded(queue, ALICE)
    await queue.delivery_failed(retried.id, "503")
    clock.advance(10)
    fresh = await _succeeded(queue, BOB)
    assert await _due(queue) == [fresh.id, retried.id]


async def test_terminal_error_gives_up_at_once_and_records_why(
    db: Database, clock: FakeClock, quotas: Quotas
) -> None:
    queue = _outbox_queue(db, clock)
    job = await _succeeded(queue)
    gone = await queue.delivery_failed(
        job.id, "404 Not Found (error code: 10003): Unknown Channel", final=True
    )
    assert gone.undeliverable_at == clock() and gone.delivered_at is None
    assert gone.delivery_error == (
        "undeliverable: 404 Not Found (error code: 10003): Unknown Channel; "
        "its 4 images stay charged (they are stored)"
    )
    assert gone.status is JobStatus.SUCCEEDED
    assert (await quotas.status(ALICE)).used == 4
    assert await _due(queue) == []
    # A late report about a job that left the outbox changes nothing.
    assert await queue.delivery_failed(job.id, "again") == gone


async def test_dead_letter_after_the_attempt_limit(db: Database, clock: FakeClock) -> None:
    queue = _outbox_queue(db, clock, attempts=3)
    [cancelled] = await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    await queue.request_cancel(cancelled.id)
    for attempt in (1, 2):
        job = await queue.delivery_failed(cancelled.id, f"502 Bad Gateway #{attempt}")
        assert job.undeliverable_at is None
        clock.advance(3600)
    dead = await queue.delivery_failed(cancelled.id, "502 Bad Gateway #3")
    assert (dead.delivery_attempts, dead.undeliverable_at) == (3, clock())
    # Nothing was charged for a cancelled job, so nothing is said about a charge.
    assert dead.delivery_error == "gave up after 3 attempts: 502 Bad Gateway #3"
    clock.advance(3600)
    assert await _due(queue) == []


async def test_backoff_is_capped_at_fifteen_minutes(db: Database, clock: FakeClock) -> None:
    queue = _outbox_queue(db, clock, attempts=20)
    job = await _succeeded(queue)
    for _ in range(12):
        failed = await queue.delivery_failed(job.id, "503")
        assert failed.next_delivery_at is not None
        clock.current = failed.next_delivery_at
    assert failed.next_delivery_at == clock()
    last = await queue.delivery_failed(job.id, "503")
    assert last.next_delivery_at == clock() + timedelta(seconds=900)


async def test_unfinished_jobs_are_never_in_the_outbox(db: Database, clock: FakeClock) -> None:
    queue = _outbox_queue(db, clock)
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    assert (await queue.delivery_failed(job.id, "too early")).delivery_attempts == 0
    assert await _due(queue) == []
