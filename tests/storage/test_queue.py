"""The job queue on SQLite and PostgreSQL: lifecycle, leases, retries, cancel, outbox."""

from __future__ import annotations

from dataclasses import replace

import pytest

from storage.contract import MAX_SEED, JobStatus, SpeedMode
from storage.errors import (
    InvalidValue,
    JobNotFound,
    LeaseLost,
    NotCancellable,
    NotJobOwner,
)
from storage.queue import JobQueue
from storage.quotas import Quotas
from tests.plugins.database import FakeClock
from tests.storage.helpers import grid_images, spec

ALICE, BOB, CAROL = 1001, 1002, 1003


async def test_job_life_from_enqueue_to_delivery(queue: JobQueue, quotas: Quotas) -> None:
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=501, guild_id=7, channel_id=8)
    assert job.status is JobStatus.QUEUED
    assert 0 <= job.seed <= MAX_SEED and job.request.seed == job.seed
    assert (job.guild_id, job.channel_id, job.interaction_id) == (7, 8, 501)
    assert (await quotas.status(ALICE)).used == 4
    job = await queue.set_message_id(job.id, 9)
    assert await queue.queue_position(job.id) == 1

    [claimed] = await queue.claim("w1")
    assert claimed.id == job.id and claimed.status is JobStatus.RUNNING
    assert claimed.lease_owner == "w1" and claimed.attempts == 1 and claimed.message_id == 9
    assert await queue.queue_position(job.id) is None
    assert [j.id for j in await queue.running_jobs()] == [job.id]

    progressed = await queue.report_progress(job.id, "w1", 40, b"\x89PNG preview")
    assert progressed.progress == 40 and progressed.preview == b"\x89PNG preview"
    done = await queue.finish(job.id, "w1", grid_images(job.id, job.seed), gpu_seconds=2.5)
    assert done.status is JobStatus.SUCCEEDED and done.gpu_seconds == 2.5
    assert done.progress == 100 and done.finished_at is not None

    stored = await queue.images(job.id)
    assert [image.index for image in stored] == [-1, 0, 1, 2, 3]
    assert stored[1].seed == job.seed and stored[0].width == 128
    assert [j.id for j in await queue.pending_deliveries()] == [job.id]
    delivered = await queue.mark_delivered(job.id)
    assert delivered.delivered_at is not None
    assert await queue.pending_deliveries() == []
    # Delivering twice keeps the first time.
    assert (await queue.mark_delivered(job.id)).delivered_at == delivered.delivered_at
    status = await quotas.status(ALICE)
    assert (status.used, status.lifetime_images, status.running, status.queued) == (4, 4, 0, 0)


async def test_given_seed_is_kept_and_random_seeds_differ(queue: JobQueue) -> None:
    fixed, *randoms = await queue.enqueue(
        ALICE, [spec(seed=7), spec(), spec(), spec()], interaction_id=None
    )
    assert fixed.seed == 7 and fixed.request.seed == 7
    assert len({job.seed for job in randoms}) == 3
    assert all(job.request.seed == job.seed for job in randoms)


async def test_same_interaction_twice_makes_one_job_set_and_one_reservation(
    queue: JobQueue, quotas: Quotas
) -> None:
    first = await queue.enqueue(ALICE, [spec(4), spec(4)], interaction_id=77)
    again = await queue.enqueue(ALICE, [spec(4), spec(4)], interaction_id=77)
    assert [j.id for j in again] == [j.id for j in first]
    assert [j.seed for j in again] == [j.seed for j in first]
    assert len(await queue.user_jobs(ALICE, [JobStatus.QUEUED])) == 2
    assert (await quotas.status(ALICE)).used == 8


async def test_interaction_of_another_user_is_refused(queue: JobQueue) -> None:
    await queue.enqueue(ALICE, [spec()], interaction_id=78)
    with pytest.raises(InvalidValue, match="another user"):
        await queue.enqueue(BOB, [spec()], interaction_id=78)
    assert await queue.user_jobs(BOB, list(JobStatus)) == []


async def test_fair_order_interleaves_users(queue: JobQueue, quotas: Quotas) -> None:
    await quotas.set_caps(ALICE, max_concurrent=None, max_queued=40)
    for i in range(40):
        await queue.enqueue(ALICE, [spec(0)], interaction_id=1000 + i)
    [bobs] = await queue.enqueue(BOB, [spec(0)], interaction_id=2000)
    assert await queue.queue_position(bobs.id) == 2
    first_two = await queue.claim("w1", limit=1) + await queue.claim("w2", limit=1)
    assert bobs.id in {job.id for job in first_two}


async def test_fast_jobs_go_before_relax_jobs(queue: JobQueue, quotas: Quotas) -> None:
    [relaxed] = await queue.enqueue(ALICE, [spec(4, mode=SpeedMode.RELAX)], interaction_id=1)
    [fast] = await queue.enqueue(BOB, [spec(4)], interaction_id=2)
    [turbo] = await queue.enqueue(CAROL, [spec(4, mode=SpeedMode.TURBO)], interaction_id=3)
    assert relaxed.cost == 0 and (await quotas.status(ALICE)).used == 0
    order = [(await queue.claim("w"))[0].id for _ in range(3)]
    assert order == [turbo.id, fast.id, relaxed.id]


async def test_claim_skips_users_at_their_running_cap(queue: JobQueue, quotas: Quotas) -> None:
    await quotas.set_caps(ALICE, max_concurrent=2, max_queued=None)
    await queue.enqueue(ALICE, [spec(0) for _ in range(5)], interaction_id=11)
    [bobs] = await queue.enqueue(BOB, [spec(0)], interaction_id=12)
    claimed = await queue.claim("w1", limit=10)
    by_user = sorted(job.user_id for job in claimed)
    assert by_user == [ALICE, ALICE, BOB] and bobs.id in {j.id for j in claimed}
    assert await queue.claim("w2", limit=10) == []
    first = next(job for job in claimed if job.user_id == ALICE)
    await queue.finish(first.id, "w1", [], gpu_seconds=0)
    [next_one] = await queue.claim("w2", limit=10)
    assert next_one.user_id == ALICE


async def test_server_wide_running_cap_set_by_admins_applies_to_claims(
    queue: JobQueue, quotas: Quotas
) -> None:
    await quotas.set_server_limits(max_concurrent=1)
    await queue.enqueue(ALICE, [spec(0), spec(0)], interaction_id=None)
    assert len(await queue.claim("w", limit=5)) == 1
    await quotas.set_caps(ALICE, max_concurrent=2, max_queued=None)
    assert len(await queue.claim("w", limit=5)) == 1


async def test_variation_keeps_its_parent(queue: JobQueue) -> None:
    [parent] = await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    child_spec = replace(spec(4), parent_job_id=parent.id, parent_index=2, strength=0.85)
    [child] = await queue.enqueue(ALICE, [child_spec], interaction_id=None)
    assert (child.parent_job_id, child.parent_index, child.strength) == (parent.id, 2, 0.85)


async def test_stalled_worker_loses_job_which_finishes_once_elsewhere(
    queue: JobQueue, quotas: Quotas, clock: FakeClock
) -> None:
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=5)
    [held] = await queue.claim("stalled")
    clock.advance(30)
    await queue.heartbeat(held.id, "stalled")
    clock.advance(59)
    assert await queue.reap_expired() == 0
    clock.advance(2)
    assert await queue.reap_expired() == 1
    assert await queue.reap_expired() == 0
    requeued = await queue.get(job.id)
    assert requeued.status is JobStatus.QUEUED and requeued.lease_owner is None

    [again] = await queue.claim("healthy")
    assert again.id == job.id and again.attempts == 2
    for late in (
        queue.heartbeat(job.id, "stalled"),
        queue.report_progress(job.id, "stalled", 90),
        queue.finish(job.id, "stalled", grid_images(job.id, job.seed), 1.0),
        queue.fail(job.id, "stalled", "boom"),
        queue.mark_cancelled(job.id, "stalled"),
        queue.release(job.id, "stalled"),
    ):
        with pytest.raises(LeaseLost, match="held by healthy"):
            await late
    done = await queue.finish(job.id, "healthy", grid_images(job.id, job.seed), 1.0)
    assert done.status is JobStatus.SUCCEEDED and done.lease_owner == "healthy"
    with pytest.raises(LeaseLost, match="it is succeeded"):
        await queue.finish(job.id, "stalled", grid_images(job.id, job.seed), 1.0)
    assert len(await queue.images(job.id)) == 5
    assert (await quotas.status(ALICE)).used == 4


async def test_job_that_always_fails_is_retried_then_failed_and_refunded(
    queue: JobQueue, quotas: Quotas
) -> None:
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=6)
    assert (await quotas.status(ALICE)).used == 4
    for attempt in (1, 2, 3):
        [held] = await queue.claim("w")
        assert held.id == job.id and held.attempts == attempt
        after = await queue.fail(job.id, "w", f"CUDA out of memory ({attempt})")
        expected = JobStatus.QUEUED if attempt < 3 else JobStatus.FAILED
        assert after.status is expected and after.error == f"CUDA out of memory ({attempt})"
    assert await queue.claim("w") == []
    assert (await quotas.status(ALICE)).used == 0
    assert [j.id for j in await queue.pending_deliveries()] == [job.id]


async def test_fail_without_retry_fails_at_once(queue: JobQueue, quotas: Quotas) -> None:
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=6)
    await queue.claim("w")
    failed = await queue.fail(job.id, "w", "prompt rejected by the safety checker", retry=False)
    assert failed.status is JobStatus.FAILED and failed.attempts == 1
    assert (await quotas.status(ALICE)).used == 0


async def test_expired_lease_on_last_attempt_fails_and_refunds(
    db: object, quotas: Quotas, clock: FakeClock, queue: JobQueue
) -> None:
    one_shot = JobQueue(queue.db, lease_seconds=10, max_attempts=1, clock=clock)
    [job] = await one_shot.enqueue(ALICE, [spec(4)], interaction_id=8)
    await one_shot.claim("w")
    clock.advance(11)
    assert await one_shot.reap_expired() == 1
    failed = await one_shot.get(job.id)
    assert failed.status is JobStatus.FAILED and "stopped responding" in (failed.error or "")
    assert (await quotas.status(ALICE)).used == 0


async def test_cancel_queued_job_refunds_at_once(queue: JobQueue, quotas: Quotas) -> None:
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=9)
    with pytest.raises(NotJobOwner, match="belongs to another user"):
        await queue.request_cancel(job.id, user_id=BOB)
    assert (await queue.get(job.id)).status is JobStatus.QUEUED
    cancelled = await queue.request_cancel(job.id, user_id=ALICE)
    assert cancelled.status is JobStatus.CANCELLED
    assert (await quotas.status(ALICE)).used == 0
    assert await queue.claim("w") == []
    with pytest.raises(NotCancellable, match="already cancelled"):
        await queue.request_cancel(job.id)
    assert (await quotas.status(ALICE)).used == 0


async def test_cancel_running_job_is_seen_by_worker_then_acknowledged(
    queue: JobQueue, quotas: Quotas
) -> None:
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=10)
    await queue.claim("w")
    requested = await queue.request_cancel(job.id, user_id=ALICE)
    assert requested.status is JobStatus.RUNNING and requested.cancel_requested
    assert (await queue.heartbeat(job.id, "w")).cancel_requested
    assert (await quotas.status(ALICE)).used == 4
    cancelled = await queue.mark_cancelled(job.id, "w")
    assert cancelled.status is JobStatus.CANCELLED
    assert (await quotas.status(ALICE)).used == 0
    assert [j.id for j in await queue.pending_deliveries()] == [job.id]


async def test_release_gives_job_back_without_spending_an_attempt(queue: JobQueue) -> None:
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=12)
    await queue.claim("w")
    released = await queue.release(job.id, "w")
    assert released.status is JobStatus.QUEUED and released.attempts == 0
    [again] = await queue.claim("w2")
    assert again.attempts == 1


async def test_stats_and_workers(queue: JobQueue, clock: FakeClock) -> None:
    await queue.register_worker("w1", "gpu-host-1", "sdxl-base")
    await queue.enqueue(ALICE, [spec(0), spec(0)], interaction_id=13)
    await queue.claim("w1")
    clock.advance(5)
    await queue.register_worker("w1", "gpu-host-1", "sdxl-turbo")
    stats = await queue.stats()
    assert (stats.queued, stats.running) == (1, 1)
    [worker] = stats.workers
    assert (worker.id, worker.host, worker.model) == ("w1", "gpu-host-1", "sdxl-turbo")
    assert worker.last_seen - worker.started_at == clock() - worker.started_at


async def test_bad_input_raises_typed_errors_and_changes_nothing(
    queue: JobQueue, quotas: Quotas
) -> None:
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=14)
    for call, error, message in (
        (queue.get(999), JobNotFound, "no job 999"),
        (queue.request_cancel(999), JobNotFound, "no job 999"),
        (queue.images(999), JobNotFound, "no job 999"),
        (queue.set_message_id(999, 5), JobNotFound, "no job 999"),
        (queue.finish(job.id, "w", [], 1.0), LeaseLost, "it is queued"),
        (queue.finish(999, "w", [], 1.0), JobNotFound, "no job 999"),
        (queue.heartbeat(job.id, "w"), LeaseLost, "no longer holds"),
        (queue.enqueue(-5, [spec()], interaction_id=None), InvalidValue, "positive Discord id"),
        (queue.enqueue(ALICE, [], interaction_id=None), InvalidValue, "at least one job"),
        (queue.enqueue(ALICE, [spec(-1)], interaction_id=None), InvalidValue, "got -1"),
        (queue.enqueue(ALICE, [spec()] * 17, interaction_id=None), InvalidValue, "at most 16"),
        (queue.claim("w", limit=0), InvalidValue, "between 1 and 100"),
        (queue.claim("", limit=1), InvalidValue, "worker id"),
        (
            queue.enqueue(ALICE, [replace(spec(4), parent_job_id=999)], interaction_id=None),
            JobNotFound,
            "no job 999 to start from",
        ),
    ):
        with pytest.raises(error, match=message):
            await call
    [held] = await queue.claim("w")
    for call, message in (
        (queue.report_progress(held.id, "w", 101), "0 to 100"),
        (queue.finish(held.id, "w", grid_images(1, 1) * 2, 1.0), "repeated"),
        (queue.finish(held.id, "w", [], -1.0), "gpu_seconds"),
    ):
        with pytest.raises(InvalidValue, match=message):
            await call
    unchanged = await queue.get(job.id)
    assert unchanged.status is JobStatus.RUNNING and unchanged.progress == 0
    assert (await quotas.status(ALICE)).used == 4
    assert await queue.user_jobs(ALICE, list(JobStatus)) == [unchanged]


async def test_one_worker_serves_three_busy_users_round_robin(
    queue: JobQueue, quotas: Quotas, clock: FakeClock
) -> None:
    for user in (ALICE, BOB, CAROL):
        await quotas.set_caps(user, max_concurrent=None, max_queued=10)
        await queue.enqueue(user, [spec(0) for _ in range(3)], interaction_id=user)
    served = []
    for _ in range(9):
        [job] = await queue.claim("w", limit=1)
        served.append(job.user_id)
        clock.advance(1)  # the render
        await queue.finish(job.id, "w", [], gpu_seconds=0)
    # Between users with as many turns taken, the one served longest ago goes next: nobody
    # waits while two others alternate.
    assert served == [ALICE, BOB, CAROL] * 3
