"""A channel where the bot cannot post: nobody is charged, and the user learns what is missing."""

from __future__ import annotations

from storage.contract import JobStatus
from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply
from tests.fakediscord import SEND_MESSAGES, VIEW_CHANNEL, FakeDiscord, User

POSTS = "/channels/{channel_id}/messages"


def _posts_to(fake: FakeDiscord, channel_id: int) -> list[int]:
    return [
        r.status
        for r in fake.requests
        if r.method == "POST" and r.path == f"/channels/{channel_id}/messages"
    ]


async def test_command_in_a_channel_without_send_messages_is_refused_before_any_charge(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    quiet = fake_discord.add_channel("announcements")
    fake_discord.set_permissions(quiet, fake_discord.bot_role, deny=SEND_MESSAGES)
    command = await fake_discord.invoke_command(
        "imagine", {"prompt": "a fox in the wrong room"}, user=alice, channel=quiet
    )
    assert await ephemeral_reply(fake_discord, command) == (
        "I can't post results in this channel: I'm missing the Send Messages permission here. "
        "Nothing was queued or charged. Ask a server admin to give me View Channel, Send "
        "Messages and Attach Files in this channel, or use another one."
    )
    hidden = fake_discord.add_channel("staff")
    fake_discord.set_permissions(hidden, fake_discord.bot_role, deny=VIEW_CHANNEL | SEND_MESSAGES)
    other = await fake_discord.invoke_command(
        "imagine", {"prompt": "a fox in the staff room"}, user=alice, channel=hidden
    )
    assert "I'm missing the View Channel and Send Messages permissions here." in (
        await ephemeral_reply(fake_discord, other)
    )
    assert _posts_to(fake_discord, quiet.id) == [] == _posts_to(fake_discord, hidden.id)
    assert bot_run.storage is not None
    assert await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus)) == []
    assert (await bot_run.storage.quotas.status(alice.id)).used == 0


async def test_a_refused_job_message_cancels_and_refunds_the_jobs(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User, bob: User
) -> None:
    # The permission was taken away between the command and the post: Discord says 50013.
    refusal = fake_discord.fail(
        "POST", POSTS, status=403, code=50013, message="Missing Permissions", times=1
    )
    command = await fake_discord.invoke_command(
        "imagine", {"prompt": "a {red, blue} fox"}, user=alice
    )
    assert await ephemeral_reply(fake_discord, command) == (
        "I can't post in this channel: Discord refused my message (Missing Permissions). Your "
        "jobs #1 and #2 were cancelled and their 8 images refunded. Ask a server admin to give "
        "me View Channel, Send Messages and Attach Files in this channel, or use another one."
    )
    assert refusal.hits == 1
    assert bot_run.storage is not None
    queue = bot_run.storage.queue
    cancelled = await queue.user_jobs(alice.id, list(JobStatus))
    assert [j.status for j in cancelled] == [JobStatus.CANCELLED, JobStatus.CANCELLED]
    assert all(j.message_id is None and j.undeliverable_at is not None for j in cancelled)
    assert (await bot_run.storage.quotas.status(alice.id)).used == 0

    # Nothing runs for them and nothing is posted later; the next command works normally.
    other = await fake_discord.invoke_command("imagine", {"prompt": "bob's fox"}, user=bob)
    assert await ephemeral_reply(fake_discord, other) == "Queued 1 job: #3."
    assert (await worker.claim()).id == 3
    assert await queue.claim("another-worker") == []
    assert await queue.pending_deliveries() == []
    assert [m.content.startswith("**bob's fox") for m in fake_discord.channel_messages()] == [True]
    assert _posts_to(fake_discord, fake_discord.channel.id) == [403, 200]
