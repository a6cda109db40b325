"""``/show`` re-posts a result with working buttons; ``/history`` lists a user's jobs privately."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

from imagine.settings import Settings
from storage.contract import Job, JobStatus
from storage.retention import FileBlobs, purge
from tests.bot.harness import (
    BotRun,
    ScriptedWorker,
    button_rows,
    ephemeral_reply,
    eventually,
    png,
)
from tests.fakediscord import FakeDiscord, Message, User


async def _finished_grid(
    fake: FakeDiscord, run: BotRun, worker: ScriptedWorker, user: User, prompt: str
) -> Message:
    interaction = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    await interaction.wait_acked()
    message = await fake.wait_for_message(lambda m: m.content.endswith("(Waiting to start)"))
    await worker.finish(await worker.claim())
    await fake.wait_for(lambda: len(message.buttons) == 9, what="the grid")
    return message


async def test_show_reposts_the_result_with_buttons_that_work(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User, bob: User
) -> None:
    original = await _finished_grid(
        fake_discord, bot_run, worker, alice, "a quiet harbour --seed 4"
    )
    before = {m.id for m in fake_discord.channel_messages()}

    show = await fake_discord.invoke_command("show", {"job": 1}, user=alice)
    reply = await ephemeral_reply(fake_discord, show)
    again = next(
        m for m in fake_discord.channel_messages() if m.id not in before and not m.ephemeral
    )
    link = f"https://discord.com/channels/{again.guild_id}/{again.channel_id}/{again.id}"
    assert reply == f"Posted job #1 again: {link}"
    assert again.content == original.content
    assert again.attachments[0].data == original.attachments[0].data
    assert button_rows(again) == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]

    # Its buttons are the job's buttons: U3 posts image 3 (Bob's click: Alice's re-post started
    # her post cooldown).
    seen = {m.id for m in fake_discord.channel_messages()}
    click = await fake_discord.click(again, again.button("U3").custom_id or "", user=bob)
    await click.wait_acked()
    single = await fake_discord.wait_for_message(lambda m: m.id not in seen and not m.ephemeral)
    assert single.content == f"**a quiet harbour --seed 4** - Image #3 <@{bob.id}>"
    assert single.attachments[0].data == png(worker.colors[2])
    # The job still points at its first message.
    assert bot_run.storage is not None
    assert (await bot_run.storage.queue.get(1)).message_id == original.id


async def test_show_explains_what_it_cannot_show(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    missing = await fake_discord.invoke_command("show", {"job": 99}, user=alice)
    assert await ephemeral_reply(fake_discord, missing) == "There is no job 99."
    queued = await fake_discord.invoke_command("imagine", {"prompt": "still waiting"}, user=alice)
    await queued.wait_acked()
    await fake_discord.wait_for_message(lambda m: m.content.endswith("(Waiting to start)"))
    early = await fake_discord.invoke_command("show", {"job": 1}, user=alice)
    assert await ephemeral_reply(fake_discord, early) == "Job #1 has no images to show (queued)."


async def test_show_of_someone_elses_job_follows_allow_foreign_clicks(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], alice: User, bob: User
) -> None:
    settings = Settings.load({**bot_environ, "IMAGINE_ALLOW_FOREIGN_CLICKS": "false"})
    run = BotRun(settings)
    try:
        await run.start(fake_discord)
        assert run.storage is not None
        await _finished_grid(fake_discord, run, ScriptedWorker(run.storage), alice, "mine")
        count = len(fake_discord.channel_messages())
        show = await fake_discord.invoke_command("show", {"job": 1}, user=bob)
        assert await ephemeral_reply(fake_discord, show) == (
            "Job #1 belongs to another user; you can show only yours."
        )
        assert len(fake_discord.channel_messages()) == count
    finally:
        await run.stop()


async def test_a_banned_user_cannot_show_a_job(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    await _finished_grid(fake_discord, bot_run, worker, alice, "a banned harbour")
    assert bot_run.storage is not None
    await bot_run.storage.users.ban(alice.id)
    before = [m.id for m in fake_discord.channel_messages()]
    show = await fake_discord.invoke_command("show", {"job": 1}, user=alice)
    response = await show.wait_acked()
    assert response.ephemeral
    assert await ephemeral_reply(fake_discord, show) == (
        "You are banned from generating images here."
    )
    assert [m.id for m in fake_discord.channel_messages()] == before


async def test_show_shares_the_u_buttons_cooldown_per_user(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], alice: User, bob: User
) -> None:
    run = BotRun(Settings.load({**bot_environ, "IMAGINE_U_COOLDOWN_SECONDS": "3600"}))
    await run.start(fake_discord)
    try:
        assert run.storage is not None
        grid = await _finished_grid(fake_discord, run, ScriptedWorker(run.storage), alice, "calm")
        first = await fake_discord.invoke_command("show", {"job": 1}, user=alice)
        assert (await ephemeral_reply(fake_discord, first)).startswith("Posted job #1 again: ")
        posted = [m.id for m in fake_discord.channel_messages()]
        too_soon = "You can post one image every 3600 seconds; try again in 3600 s."
        again = await fake_discord.invoke_command("show", {"job": 1}, user=alice)
        assert await ephemeral_reply(fake_discord, again) == too_soon
        # A U post is a post too: the same cooldown refuses it.
        click = await fake_discord.click(grid, grid.button("U1").custom_id or "", user=alice)
        assert await ephemeral_reply(fake_discord, click) == too_soon
        assert [m.id for m in fake_discord.channel_messages()] == posted
        # The cooldown is the user's own: Bob may show the job.
        other = await fake_discord.invoke_command("show", {"job": 1}, user=bob)
        assert (await ephemeral_reply(fake_discord, other)).startswith("Posted job #1 again: ")
        assert len(fake_discord.channel_messages()) == len(posted) + 1
    finally:
        await run.stop()


async def test_history_lists_your_jobs_privately_with_links(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User, bob: User
) -> None:
    empty = await fake_discord.invoke_command("history", user=alice)
    assert await ephemeral_reply(fake_discord, empty) == "You have no jobs yet; try /imagine."

    first = await _finished_grid(fake_discord, bot_run, worker, alice, "a red kite")
    other = await fake_discord.invoke_command("imagine", {"prompt": "bob's boat"}, user=bob)
    await other.wait_acked()
    second = await fake_discord.invoke_command("imagine", {"prompt": "a blue kite"}, user=alice)
    await second.wait_acked()
    # Bob's and Alice's commands are queued concurrently: either may get the next job id.
    await fake_discord.wait_for(
        lambda: (
            sum("kite" in m.content or "boat" in m.content for m in fake_discord.channel_messages())
            == 3
        )
    )

    assert bot_run.storage is not None
    queue = bot_run.storage.queue

    async def posted() -> Job | None:
        mine = await queue.user_jobs(alice.id, [JobStatus.QUEUED])
        return mine[-1] if mine and mine[-1].message_id is not None else None

    latest = await eventually(posted)
    history = await fake_discord.invoke_command("history", user=alice)
    text = await ephemeral_reply(fake_discord, history)
    lines = text.splitlines()
    assert lines[0] == "Your last 2 jobs:"
    guild, channel = first.guild_id, first.channel_id
    assert lines[1].startswith(f"[#{latest.id}](<https://discord.com/channels/")
    assert " imagine queued: a blue kite <t:" in lines[1]
    assert lines[2].startswith(f"[#1](<https://discord.com/channels/{guild}/{channel}/{first.id}>)")
    assert " imagine succeeded: a red kite <t:" in lines[2]
    assert "bob" not in text
    assert lines[-1] == "Use /show with a job's number to post its result again."


async def test_a_purged_job_says_so_and_its_discord_copy_stays(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    original = await _finished_grid(fake_discord, bot_run, worker, alice, "long ago")
    grid = original.attachments[0].data
    assert bot_run.storage is not None and bot_run.services is not None
    later = datetime.now(UTC) + timedelta(days=31)
    store = FileBlobs(bot_run.settings.data_dir / "images")
    report = await purge(bot_run.storage.db, store, now=later, older_than=timedelta(days=30))
    assert (report.jobs, report.job_files) == (1, 5)

    show = await fake_discord.invoke_command("show", {"job": 1}, user=alice)
    link = f"https://discord.com/channels/{original.guild_id}/{original.channel_id}/{original.id}"
    assert await ephemeral_reply(fake_discord, show) == (
        "The stored images of job #1 were removed after the retention period; its original "
        f"message is still at {link}."
    )
    click = await fake_discord.click(original, original.button("U1").custom_id or "", user=alice)
    assert await ephemeral_reply(fake_discord, click) == (
        "The stored images of job #1 were removed after the retention period, so its buttons "
        "no longer work; the images in this message remain."
    )
    assert original.attachments[0].data == grid
    history = await fake_discord.invoke_command("history", user=alice)
    assert "imagine succeeded, images removed: long ago" in await ephemeral_reply(
        fake_discord, history
    )


async def test_the_bot_applies_image_retention_days_by_itself(
    fake_discord: FakeDiscord, bot_environ: dict[str, str]
) -> None:
    from storage.bundle import open_storage
    from storage.contract import GenerationRequest, JobKind, JobSpec, StoredImage
    from tests.plugins.database import FakeClock

    settings = Settings.load({**bot_environ, "IMAGINE_IMAGE_RETENTION_DAYS": "7"})
    clock = FakeClock(datetime.now(UTC) - timedelta(days=8))
    async with await open_storage(settings.storage(), clock=clock) as storage:
        spec = JobSpec(JobKind.IMAGINE, GenerationRequest(prompt="last week"), cost=4)
        (job,) = await storage.queue.enqueue(5, [spec], interaction_id=None)
        (claimed,) = await storage.queue.claim("w")
        blob = await storage.images.put(png((1, 2, 3)))
        image = StoredImage(0, blob.sha256, 32, 32, 1, blob.size, blob.path)
        await storage.queue.finish(claimed.id, "w", [image], gpu_seconds=0.1)
    old = (datetime.now(UTC) - timedelta(days=8)).timestamp()
    os.utime(blob.path, (old, old))

    run = BotRun(settings)
    try:
        await run.start(fake_discord)
        assert run.storage is not None
        queue = run.storage.queue

        images = run.storage.images

        async def purged() -> datetime | None:
            # The job is marked first; its files go right after.
            marked = (await queue.get(job.id)).images_purged_at
            gone = await asyncio.to_thread(images.path, blob.sha256) is None
            return marked if gone else None

        assert await eventually(purged) is not None
    finally:
        await run.stop()
