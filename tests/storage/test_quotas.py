"""Quotas: limits over server defaults, periods, refunds, resets, grants, relax mode, bans."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest

from storage.contract import MAX_ID, JobStatus, SpeedMode
from storage.db import Database
from storage.errors import InvalidValue, QuotaExceeded, UserBanned, UserNotFound
from storage.limits import MAX_CAPS, MAX_IMAGES, Limits, period_end, period_start
from storage.queue import JobQueue
from storage.quotas import Quotas
from storage.users import Users
from tests.plugins.database import FakeClock
from tests.storage.helpers import grid_images, spec

ALICE, BOB = 1001, 1002


async def test_new_user_gets_server_defaults(quotas: Quotas) -> None:
    status = await quotas.status(ALICE)
    assert (status.limit, status.period, status.used, status.left) == (200, "day", 0, 200)
    assert (status.max_concurrent, status.max_queued, status.custom) == (3, 10, False)


async def test_own_limit_overrides_and_admin_server_limits_apply_to_others(
    quotas: Quotas, queue: JobQueue
) -> None:
    await quotas.set_limit(ALICE, 8, "week")
    server = await quotas.set_server_limits(images=4, max_queued=2)
    assert server == Limits(images=4, period="day", max_concurrent=3, max_queued=2)
    alice, bob = await quotas.status(ALICE), await quotas.status(BOB)
    assert (alice.limit, alice.period, alice.max_queued, alice.custom) == (8, "week", 2, True)
    assert (bob.limit, bob.period, bob.custom) == (4, "day", False)
    with pytest.raises(QuotaExceeded, match="used 0 of 4 images this day and this needs 8"):
        await queue.enqueue(BOB, [spec(4), spec(4)], interaction_id=None)
    cleared = await quotas.clear_limits(ALICE)
    assert (cleared.limit, cleared.period, cleared.custom) == (4, "day", False)


async def test_usage_counts_only_the_current_period(
    quotas: Quotas, queue: JobQueue, clock: FakeClock
) -> None:
    clock.current = datetime(2030, 3, 14, 23, 0, tzinfo=UTC)
    await quotas.set_limit(ALICE, 10, "day")
    await queue.enqueue(ALICE, [spec(4), spec(4)], interaction_id=None)
    status = await quotas.status(ALICE)
    assert (status.used, status.left) == (8, 2)
    assert status.resets_at == datetime(2030, 3, 15, tzinfo=UTC)
    with pytest.raises(QuotaExceeded, match=r"resets at 2030-03-15 00:00 UTC"):
        await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    clock.advance(3600)
    assert (await quotas.status(ALICE)).used == 0
    await queue.enqueue(ALICE, [spec(4)], interaction_id=None)


async def test_refund_of_yesterdays_job_does_not_credit_today(
    quotas: Quotas, queue: JobQueue, clock: FakeClock
) -> None:
    clock.current = datetime(2030, 3, 14, 23, 30, tzinfo=UTC)
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    clock.advance(3600)
    await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    await queue.request_cancel(job.id)
    assert (await quotas.status(ALICE)).used == 4


async def test_reset_then_refund_of_earlier_job_never_goes_negative(
    quotas: Quotas, queue: JobQueue
) -> None:
    [job] = await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    status = await quotas.reset(ALICE)
    assert (status.used, status.left) == (0, 200)
    await queue.request_cancel(job.id)
    assert (await quotas.status(ALICE)).used == 0
    await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    assert (await quotas.status(ALICE)).used == 4


async def test_grant_adds_images_for_the_period(quotas: Quotas, queue: JobQueue) -> None:
    await quotas.set_limit(ALICE, 4, "total")
    await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    with pytest.raises(QuotaExceeded, match="never resets"):
        await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    status = await quotas.grant(ALICE, 4)
    assert (status.used, status.granted, status.left, status.resets_at) == (4, 4, 4, None)
    await queue.enqueue(ALICE, [spec(4)], interaction_id=None)
    assert (await quotas.status(ALICE)).left == 0


async def test_relax_mode_costs_nothing_even_without_quota(quotas: Quotas, queue: JobQueue) -> None:
    await quotas.set_limit(ALICE, 0, "day")
    [job] = await queue.enqueue(ALICE, [spec(4, mode=SpeedMode.RELAX)], interaction_id=None)
    assert job.cost == 0 and job.priority == 0
    with pytest.raises(QuotaExceeded):
        await queue.enqueue(ALICE, [spec(4)], interaction_id=None)


async def test_relax_mode_has_its_own_daily_cap_per_user(
    db: Database, quotas: Quotas, clock: FakeClock
) -> None:
    queue = JobQueue(db, limits=Limits(images=0, relax_images=12), clock=clock)
    quotas = Quotas(db, Limits(images=0, relax_images=12), clock=clock)
    relax = spec(4, mode=SpeedMode.RELAX)
    first, second, third = await queue.enqueue(ALICE, [relax, relax, relax], interaction_id=None)
    assert (first.cost, first.relax_images) == (0, 4)
    with pytest.raises(QuotaExceeded) as refused:
        await queue.enqueue(ALICE, [relax], interaction_id=None)
    resets = period_end("day", clock())
    assert str(refused.value) == (
        "Relax mode is limited to 12 images a day: you have made 12 today and this needs 4. "
        f"It resets at {resets:%Y-%m-%d %H:%M} UTC; fast mode uses your image quota instead."
    )
    status = await quotas.status(ALICE)
    assert (status.relax_used, status.relax_limit, status.used) == (12, 12, 0)
    assert "relax: 12 of 12 images today" in status.lines()
    # Another user has a cap of their own.
    await queue.enqueue(BOB, [relax], interaction_id=None)

    # A cancelled relax job gives its images back, like a refund; a finished one does not.
    await queue.request_cancel(second.id)
    [again] = await queue.enqueue(ALICE, [relax], interaction_id=None)
    [claimed] = await queue.claim("w1", limit=1)
    await queue.finish(claimed.id, "w1", grid_images(claimed.id, claimed.seed), gpu_seconds=1)
    with pytest.raises(QuotaExceeded):
        await queue.enqueue(ALICE, [relax], interaction_id=None)

    assert resets is not None
    clock.current = resets  # the next UTC day
    await queue.enqueue(ALICE, [relax, relax, relax], interaction_id=None)
    assert (await quotas.status(ALICE)).relax_used == 12
    assert {third.id, again.id} <= {j.id for j in await queue.user_jobs(ALICE, JobStatus)}


async def test_concurrent_relax_commands_never_pass_the_cap(db: Database, clock: FakeClock) -> None:
    queue = JobQueue(db, limits=Limits(relax_images=12, max_queued=100), clock=clock)
    relax = spec(4, mode=SpeedMode.RELAX)
    results = await asyncio.gather(
        *(queue.enqueue(ALICE, [relax], interaction_id=None) for _ in range(20)),
        return_exceptions=True,
    )
    accepted = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert (len(accepted), len(refused)) == (3, 17)


def test_relax_cap_is_checked_like_an_image_limit() -> None:
    with pytest.raises(InvalidValue, match="relax image limit must be a whole number from 0"):
        Limits(relax_images=-1)


async def test_banned_user_is_refused_and_nothing_is_queued(
    users: Users, queue: JobQueue, quotas: Quotas
) -> None:
    await users.ban(ALICE)
    assert await users.is_banned(ALICE)
    with pytest.raises(UserBanned, match="banned"):
        await queue.enqueue(ALICE, [spec(4)], interaction_id=1)
    status = await quotas.status(ALICE)
    assert (status.used, status.queued) == (0, 0)
    await users.unban(ALICE)
    await queue.enqueue(ALICE, [spec(4)], interaction_id=1)


async def test_bad_quota_input_raises_clear_errors_and_changes_nothing(quotas: Quotas) -> None:
    await quotas.set_limit(ALICE, 5, "day")
    for call, error, message in (
        (quotas.set_limit(ALICE, -1, "day"), InvalidValue, "from 0 to 1000000, got -1"),
        (quotas.set_limit(ALICE, 5, "year"), InvalidValue, "day, week, month, total; got 'year'"),
        (quotas.set_limit(0, 5, "day"), InvalidValue, "positive Discord id"),
        (quotas.set_caps(ALICE, max_concurrent=0, max_queued=None), InvalidValue, "from 1 to 100"),
        (quotas.set_caps(ALICE, max_concurrent=None, max_queued=None), InvalidValue, "give"),
        (quotas.grant(ALICE, 0), InvalidValue, "from 1 to 1000000"),
        (quotas.set_server_limits(period="fortnight"), InvalidValue, "fortnight"),
        (quotas.reset(BOB), UserNotFound, "User 1002 has never used the bot"),
        (quotas.clear_limits(BOB), UserNotFound, "never used"),
    ):
        with pytest.raises(error, match=message):
            await call
    status = await quotas.status(ALICE)
    assert (status.limit, status.period, status.max_concurrent, status.used) == (5, "day", 3, 0)
    assert (await quotas.status(BOB)).custom is False


async def test_values_beyond_the_shared_bounds_are_refused_before_the_database(
    quotas: Quotas, queue: JobQueue
) -> None:
    """Out-of-range numbers get the same clear message on both databases (32-bit limit columns
    on PostgreSQL, 64-bit ids everywhere), and the largest allowed values are stored."""
    top = await quotas.set_limit(ALICE, MAX_IMAGES, "total")
    assert (top.limit, top.period) == (MAX_IMAGES, "total")
    caps = await quotas.set_caps(
        ALICE, max_concurrent=MAX_CAPS["max_concurrent"], max_queued=MAX_CAPS["max_queued"]
    )
    assert (caps.max_concurrent, caps.max_queued) == (100, 1000)
    huge_id = MAX_ID + 1
    for call, message in (
        (quotas.set_limit(ALICE, MAX_IMAGES + 1, "day"), "from 0 to 1000000, got 1000001"),
        (quotas.set_limit(ALICE, 2**40, "day"), f"got {2**40}"),
        (quotas.set_limit(huge_id, 5, "day"), f"got {huge_id} (at most {MAX_ID})"),
        (quotas.status(huge_id), f"at most {MAX_ID}"),
        (quotas.set_caps(ALICE, max_concurrent=101, max_queued=None), "from 1 to 100, got 101"),
        (quotas.set_caps(ALICE, max_concurrent=None, max_queued=10**6), "from 1 to 1000"),
        (quotas.set_server_limits(images=-1), "from 0 to 1000000"),
        (quotas.grant(ALICE, 2**31), "from 1 to 1000000"),
        (queue.enqueue(ALICE, [spec()], interaction_id=huge_id), "interaction id must be"),
    ):
        with pytest.raises(InvalidValue, match=re.escape(message)):
            await call
    status = await quotas.status(ALICE)
    assert (status.limit, status.max_concurrent, status.queued) == (MAX_IMAGES, 100, 0)


def test_period_boundaries() -> None:
    now = datetime(2030, 12, 18, 15, 30, tzinfo=UTC)  # a Wednesday
    assert period_start("day", now) == datetime(2030, 12, 18, tzinfo=UTC)
    assert period_start("week", now) == datetime(2030, 12, 16, tzinfo=UTC)
    assert period_end("week", now) == datetime(2030, 12, 23, tzinfo=UTC)
    assert period_end("month", now) == datetime(2031, 1, 1, tzinfo=UTC)
    assert period_end("total", now) is None
    with pytest.raises(InvalidValue, match="got 'hour'"):
        period_start("hour", now)


async def test_status_adds_up_the_gpu_seconds_of_the_users_jobs(
    quotas: Quotas, queue: JobQueue
) -> None:
    first, second = await queue.enqueue(ALICE, [spec(4), spec(4)], interaction_id=901)
    await queue.enqueue(BOB, [spec(4)], interaction_id=902)
    for _ in range(3):
        (job,) = await queue.claim("w1")
        seconds = {first.id: 1.25, second.id: 2.5}.get(job.id, 40.0)
        await queue.finish(job.id, "w1", grid_images(job.id, job.seed), gpu_seconds=seconds)
    status = await quotas.status(ALICE)
    assert status.gpu_seconds == 3.75
    assert "gpu time: 3.8 s" in status.lines()
    assert (await quotas.status(BOB)).gpu_seconds == 40.0
