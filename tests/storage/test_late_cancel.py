"""Late cancels on SQLite and PostgreSQL: a cancel that commits before a job's last write wins.

The user who cancels a running job is told it is refunded; these tests hold storage to that
whatever the worker does next: finish, fail, give the job back, or die.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from storage.contract import JobStatus
from storage.errors import NotCancellable
from storage.queue import JobQueue
from storage.quotas import Quotas
from storage.tables import jobs
from tests.plugins.database import FakeClock
from tests.storage.helpers import grid_images, spec

ALICE, BOB = 1001, 1002


async def _running(queue: JobQueue, worker: str = "w1") -> int:
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    [claimed] = await queue.claim(worker)
    assert claimed.id == job.id
    return job.id


async def test_cancel_requested_before_finish_ends_cancelled_and_refunded(
    queue: JobQueue, quotas: Quotas
) -> None:
    job_id = await _running(queue)
    asked = await queue.request_cancel(job_id, user_id=ALICE)
    assert (asked.status, asked.cancel_requested) == (JobStatus.RUNNING, True)
    # The render was already done: the worker finishes without seeing the cancel.
    ended = await queue.finish(job_id, "w1", grid_images(job_id, 1), gpu_seconds=3.0)
    assert (ended.status, ended.error, ended.gpu_seconds) == (JobStatus.CANCELLED, "cancelled", 3.0)
    assert await queue.images(job_id) == []
    status = await quotas.status(ALICE)
    assert (status.used, status.lifetime_images, status.running) == (0, 0, 0)
    assert [j.id for j in await queue.pending_deliveries()] == [job_id]


async def test_cancel_after_finish_is_refused_and_the_job_stays_charged(
    queue: JobQueue, quotas: Quotas
) -> None:
    job_id = await _running(queue)
    await queue.finish(job_id, "w1", grid_images(job_id, 1), gpu_seconds=1.0)
    with pytest.raises(NotCancellable, match=f"Job {job_id} already succeeded"):
        await queue.request_cancel(job_id, user_id=ALICE)
    assert (await queue.get(job_id)).status is JobStatus.SUCCEEDED
    assert (await quotas.status(ALICE)).used == 4


async def test_cancel_requested_job_whose_worker_dies_is_cancelled_not_rerun(
    queue: JobQueue, quotas: Quotas, clock: FakeClock
) -> None:
    job_id = await _running(queue)
    await queue.request_cancel(job_id, user_id=ALICE)
    clock.advance(61)  # the worker died: its lease runs out
    assert await queue.reap_expired() == 1
    job = await queue.get(job_id)
    assert (job.status, job.attempts, job.finished_at) == (JobStatus.CANCELLED, 1, clock())
    assert await queue.claim("w2") == []
    assert (await quotas.status(ALICE)).used == 0
    assert await queue.reap_expired() == 0  # refunded once, taken back once


async def test_cancel_requested_job_that_fails_or_is_given_back_ends_cancelled(
    queue: JobQueue, quotas: Quotas
) -> None:
    failing = await _running(queue)
    await queue.request_cancel(failing)
    failed = await queue.fail(failing, "w1", "RuntimeError: out of memory", retry=True)
    assert failed.status is JobStatus.CANCELLED  # not back in the queue for another attempt

    released = await _running(queue)
    await queue.request_cancel(released)
    given_back = await queue.release(released, "w1")  # the worker is shutting down
    assert given_back.status is JobStatus.CANCELLED
    assert await queue.claim("w2") == []
    assert (await quotas.status(ALICE)).used == 0


async def test_claim_skips_a_queued_job_with_a_cancel_request_and_the_reaper_cancels_it(
    queue: JobQueue, quotas: Quotas
) -> None:
    # Older versions could put a cancel-requested job back in the queue.
    [stale] = await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    [fresh] = await queue.enqueue(BOB, [spec(4)], interaction_id=None)
    async with queue.db.write() as tx:
        await tx.conn.execute(
            update(jobs).where(jobs.c.id == stale.id).values(cancel_requested=True)
        )
    assert [j.id for j in await queue.claim("w1", limit=5)] == [fresh.id]
    assert await queue.queue_position(stale.id) is None
    assert await queue.reap_expired() == 1
    assert (await queue.get(stale.id)).status is JobStatus.CANCELLED
    assert (await quotas.status(ALICE)).used == 0


async def test_racing_cancel_and_finish_always_agree_with_what_the_user_is_told(
    queue: JobQueue, quotas: Quotas
) -> None:
    """Either the cancel is accepted and the job ends cancelled and refunded, or the cancel is
    refused because the job already succeeded and it stays charged; never a mix."""
    for _ in range(12):
        job_id = await _running(queue)
        cancel, finish = await asyncio.gather(
            queue.request_cancel(job_id, user_id=ALICE),
            queue.finish(job_id, "w1", grid_images(job_id, 1), gpu_seconds=1.0),
            return_exceptions=True,
        )
        ended = await queue.get(job_id)
        if isinstance(cancel, NotCancellable):
            assert ended.status is JobStatus.SUCCEEDED
        else:
            assert not isinstance(cancel, BaseException), cancel
            assert not isinstance(finish, BaseException), finish
            assert finish.status is ended.status is JobStatus.CANCELLED
    charged = len(await queue.user_jobs(ALICE, [JobStatus.SUCCEEDED])) * 4
    assert (await quotas.status(ALICE)).used == charged


async def test_jobs_the_bot_could_not_post_are_cancelled_refunded_and_never_delivered(
    queue: JobQueue, quotas: Quotas
) -> None:
    running = await _running(queue)  # a worker was quicker than the failed post
    [queued] = await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    ended = await queue.cancel_unposted([queued.id, running], "403 Forbidden: Missing Permissions")
    by_id = {job.id: job for job in ended}
    assert by_id[queued.id].status is JobStatus.CANCELLED
    assert (by_id[running].status, by_id[running].cancel_requested) == (JobStatus.RUNNING, True)
    assert (await quotas.status(ALICE)).used == 4  # the running one is refunded when it stops
    finished = await queue.finish(running, "w1", grid_images(running, 1), gpu_seconds=1.0)
    assert finished.status is JobStatus.CANCELLED
    assert (await quotas.status(ALICE)).used == 0
    assert await queue.pending_deliveries() == []
    assert {job.delivery_error for job in (by_id[queued.id], finished)} == {
        "undeliverable: 403 Forbidden: Missing Permissions"
    }
