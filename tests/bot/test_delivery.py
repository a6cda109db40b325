"""Delivery through the fake Discord: errors that can never succeed, backoff, giving up."""

from __future__ import annotations

import asyncio
import time

from imagine.settings import Settings
from storage.bundle import open_storage
from storage.contract import GenerationRequest, Job, JobKind, JobSpec, JobStatus
from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply, eventually
from tests.fakediscord import VIEW_CHANNEL, FakeDiscord, Message, User

STUCK = 304
EDITS = "/channels/{channel_id}/messages/{message_id}"


async def _imagine(fake: FakeDiscord, user: User, prompt: str) -> Message:
    command = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    await ephemeral_reply(fake, command)
    return await fake.wait_for_message(lambda m: m.content.startswith(f"**{prompt}"))


async def _stop(run: BotRun) -> None:
    """Stop a bot once discord.py's READY has come (it arrives a guild-streaming timeout after
    connecting; a bot closed before that dispatches it into a closed client)."""
    assert run.bot is not None
    await asyncio.wait_for(run.bot.ready_event.wait(), 10)
    await run.stop()


async def _job_with(run: BotRun, job_id: int, check: str) -> Job | None:
    assert run.storage is not None
    job = await run.storage.queue.get(job_id)
    return job if getattr(job, check) is not None else None


async def test_results_for_a_deleted_channel_never_hold_up_other_users(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], alice: User
) -> None:
    """A user queues 304 jobs in a channel, deletes it and cancels them: each undeliverable
    result is tried once and recorded, and another user's result, finished after all of them,
    still arrives within seconds."""
    environ = {**bot_environ, "IMAGINE_MAX_QUEUED_JOBS": "400", "IMAGINE_QUOTA_IMAGES": "2000"}
    settings = Settings.load(environ)
    first = BotRun(settings)
    await first.start(fake_discord)
    mallory = fake_discord.add_user("mallory")
    doomed = fake_discord.add_channel("doomed")
    letters = ", ".join("abcdefghijklmnop")
    spam = await fake_discord.invoke_command(
        "imagine", {"prompt": f"spam {{{letters}}}"}, user=mallory, channel=doomed
    )
    assert (await ephemeral_reply(fake_discord, spam)).startswith("Queued 16 jobs")
    message = await _imagine(fake_discord, alice, "a result that must arrive")
    await _stop(first)

    # While no bot runs, the outbox fills: every stuck job ahead of alice's result.
    async with await open_storage(settings.storage()) as storage:
        queue = storage.queue
        spec = JobSpec(JobKind.IMAGINE, GenerationRequest(prompt="more spam"), cost=4)
        for batch in range(18):  # as if from 18 more commands in that channel
            await queue.enqueue(
                mallory.id,
                [spec] * 16,
                interaction_id=10_000 + batch,
                guild_id=fake_discord.guild.id,
                channel_id=doomed.id,
            )
        stuck = await queue.user_jobs(mallory.id, [JobStatus.QUEUED])
        assert len(stuck) == STUCK
        await fake_discord.delete_channel(doomed)
        for job in stuck:
            await queue.request_cancel(job.id)
        worker = ScriptedWorker(storage)
        job = await worker.finish(await worker.claim())
        assert job.user_id == alice.id
        due = await queue.pending_deliveries(limit=500)
        assert [j.id for j in due][-1] == job.id and len(due) == STUCK + 1

    second = BotRun(settings)
    started = time.monotonic()
    await second.start(fake_discord)
    try:
        await fake_discord.wait_for(
            lambda: message.content.endswith("(fast)") and len(message.buttons) == 9,
            timeout=10,
            what="alice's result",
        )
        assert time.monotonic() - started < 10
        await eventually(lambda: _job_with(second, job.id, "delivered_at"))
        assert second.storage is not None
        queue = second.storage.queue

        async def all_given_up() -> list[Job] | None:
            jobs = await queue.user_jobs(mallory.id, [JobStatus.CANCELLED])
            return jobs if all(j.undeliverable_at is not None for j in jobs) else None

        given_up = await eventually(all_given_up, within=30)
        assert len(given_up) == STUCK
        assert {j.delivery_attempts for j in given_up} == {1}
        assert {j.delivery_error for j in given_up} == {
            "undeliverable: 404 Not Found (error code: 10003): Unknown Channel"
        }
        # Tried once each, never again: one 404 per job from the deleted channel.
        refused = [r for r in fake_discord.requests if str(doomed.id) in r.path]
        assert sum(r.status == 404 for r in refused) == STUCK
        assert await queue.pending_deliveries(limit=500) == []
        assert (await second.storage.quotas.status(mallory.id)).used == 0
    finally:
        await second.stop()


async def test_a_failing_edit_backs_off_across_a_restart_then_delivers_once(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], alice: User
) -> None:
    settings = Settings.load({**bot_environ, "IMAGINE_DELIVERY_RETRY_SECONDS": "1.5"})
    first = BotRun(settings)
    await first.start(fake_discord)
    message = await _imagine(fake_discord, alice, "through a flaky gateway")
    outage = fake_discord.fail(
        "PATCH", EDITS, status=503, code=0, message="upstream connect error", times=1000
    )
    assert first.storage is not None
    worker = ScriptedWorker(first.storage)
    job = await worker.finish(await worker.claim())
    await eventually(lambda: _job_with(first, job.id, "next_delivery_at"))
    await _stop(first)
    async with await open_storage(settings.storage()) as storage:
        failed = await storage.queue.get(job.id)  # what the stopped bot recorded
    assert failed.delivery_attempts >= 1 and failed.undeliverable_at is None
    assert failed.delivery_error == (
        "503 Service Unavailable (error code: 0): upstream connect error"
    )
    assert failed.next_delivery_at is not None

    outage.times = outage.hits  # Discord is back
    second = BotRun(settings)
    await second.start(fake_discord)
    try:
        await fake_discord.wait_for(lambda: len(message.buttons) == 9, what="the result")
        delivered = await eventually(lambda: _job_with(second, job.id, "delivered_at"))
        # The restarted bot waited out the backoff recorded by the first one.
        assert delivered.delivered_at is not None
        assert delivered.delivered_at >= failed.next_delivery_at
        assert delivered.delivery_attempts == failed.delivery_attempts
        assert sum(r.content.endswith("(fast)") for r in message.history) == 1
    finally:
        await second.stop()


async def test_delivery_is_given_up_after_the_attempt_limit_and_the_quota_stays_charged(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], alice: User
) -> None:
    run = BotRun(
        Settings.load(
            {
                **bot_environ,
                "IMAGINE_DELIVERY_RETRY_SECONDS": "0.05",
                "IMAGINE_DELIVERY_MAX_ATTEMPTS": "3",
            }
        )
    )
    await run.start(fake_discord)
    try:
        message = await _imagine(fake_discord, alice, "never gets through")
        # Only the result uploads fail: a progress edit may or may not be caught in between.
        outage = fake_discord.fail(
            "PATCH",
            EDITS,
            status=503,
            code=0,
            message="upstream connect error",
            times=1000,
            uploads_only=True,
        )
        assert run.storage is not None
        worker = ScriptedWorker(run.storage)
        job = await worker.finish(await worker.claim())
        dead = await eventually(lambda: _job_with(run, job.id, "undeliverable_at"))
        assert (dead.delivery_attempts, outage.hits) == (3, 3)
        assert dead.delivery_error == (
            "gave up after 3 attempts: 503 Service Unavailable (error code: 0): upstream "
            "connect error; its 4 images stay charged (they are stored)"
        )
        assert len(await run.storage.queue.images(job.id)) == 5
        assert (await run.storage.quotas.status(alice.id)).used == 4
        assert message.content.endswith("(Waiting to start)")
        assert await run.storage.queue.pending_deliveries() == []
    finally:
        await run.stop()


async def test_a_channel_the_bot_can_no_longer_see_is_given_up_at_once(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    message = await _imagine(fake_discord, alice, "hidden away")
    fake_discord.set_permissions(fake_discord.channel, fake_discord.bot_role, deny=VIEW_CHANNEL)
    job = await worker.finish(await worker.claim())
    gone = await eventually(lambda: _job_with(bot_run, job.id, "undeliverable_at"))
    assert gone.delivery_attempts == 1
    assert gone.delivery_error is not None
    assert gone.delivery_error.startswith(
        "undeliverable: 403 Forbidden (error code: 50001): Missing Access"
    )
    assert message.content.endswith("(Waiting to start)")
    assert await worker.storage.queue.pending_deliveries() == []
