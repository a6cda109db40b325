"""Cancelling late, through Discord: what the user is told is what storage does."""

from __future__ import annotations

from storage.contract import JobStatus
from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply
from tests.fakediscord import FakeDiscord, User


async def test_cancel_while_the_job_finishes_is_refunded_as_promised(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    command = await fake_discord.invoke_command("imagine", {"prompt": "a late fox"}, user=alice)
    await ephemeral_reply(fake_discord, command)
    message = await fake_discord.wait_for_message(lambda m: m.content.startswith("**a late fox"))
    job = await worker.claim()
    await worker.progress(job, 90)
    await fake_discord.wait_for(lambda: message.content.endswith("(90%)"))

    click = await fake_discord.click(message, message.button("❌").custom_id or "", user=alice)
    assert await ephemeral_reply(fake_discord, click) == (
        f"Stopping job #{job.id}; it ends at the next step. Its 4 images are refunded."
    )
    # The render had already finished: the worker stores the images without seeing the cancel.
    ended = await worker.finish(job)
    assert ended.status is JobStatus.CANCELLED
    await fake_discord.wait_for(
        lambda: message.content.endswith("(Cancelled, refunded)"), what="the cancelled message"
    )
    assert message.buttons == [] and message.attachments == []
    info = await fake_discord.invoke_command("info", user=alice)
    text = await ephemeral_reply(fake_discord, info)
    assert "Quota: 0 of 40 images used per day, 40 left" in text
    assert "Lifetime images: 0" in text

    # Once a job has succeeded, a cancel is refused and says so.
    again = await fake_discord.invoke_command("imagine", {"prompt": "an early fox"}, user=alice)
    await ephemeral_reply(fake_discord, again)
    done = await worker.finish(await worker.claim())
    late = await fake_discord.invoke_command("cancel", {"job": done.id}, user=alice)
    assert await ephemeral_reply(fake_discord, late) == (
        f"Job {done.id} already succeeded; there is nothing to cancel."
    )
    assert bot_run.storage is not None
    assert (await bot_run.storage.quotas.status(alice.id)).used == 4
