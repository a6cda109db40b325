"""Job buttons against forged and malformed ids, and the U buttons' limits (fake Discord).

A custom id is user input: a modified client can send any id on any message. Whatever it sends,
nothing is reserved, queued or posted publicly, and the clicker is told why in private.
"""

from __future__ import annotations

import pytest

from imagine.settings import Settings
from storage.contract import Job, JobKind, JobStatus, StoredImage
from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply, eventually, png
from tests.fakediscord import FakeDiscord, Interaction, Message, User

MAX_JOB_ID = 2**63 - 1
NOTHING = "Nothing was queued or charged."
RANGE = f" (1 to {MAX_JOB_ID})"


async def _grid(fake: FakeDiscord, worker: ScriptedWorker, user: User, prompt: str) -> Message:
    """The job message of a finished grid, with its nine buttons."""
    command = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    await ephemeral_reply(fake, command)
    message = await fake.wait_for_message(lambda m: m.content.startswith(f"**{prompt}"))
    await worker.finish(await worker.claim())
    await fake.wait_for(lambda: len(message.buttons) == 9, what="the grid buttons")
    return message


async def _single(fake: FakeDiscord, number: int) -> Message:
    """The public post of image ``number`` (U buttons); private answers mention it too."""
    return await fake.wait_for_message(
        lambda m: not m.ephemeral and f" - Image #{number} <@" in m.content
    )


async def _public_ids(fake: FakeDiscord) -> set[int]:
    return {m.id for m in fake.channel_messages()}


async def _refused(fake: FakeDiscord, click: Interaction) -> str:
    """The private answer to a click, which must come within Discord's deadline."""
    await click.wait_acked()
    return await ephemeral_reply(fake, click)


async def _nothing_happened(
    run: BotRun, fake: FakeDiscord, before: set[int], user: User, used: int
) -> None:
    assert run.storage is not None
    assert await _public_ids(fake) == before  # no public post
    assert await run.storage.queue.claim("nobody") == []  # nothing queued to run
    assert (await run.storage.quotas.status(user.id)).used == used  # nothing more reserved


def _private_answers(click: Interaction) -> list[str]:
    return [m.content for m in click.followups if m.ephemeral and not m.deleted]


@pytest.mark.parametrize("shown", [False, True], ids=["id-only", "whole-payload"])
async def test_forged_v8_reserves_nothing_runs_nothing_and_posts_nothing(
    fake_discord: FakeDiscord,
    bot_run: BotRun,
    worker: ScriptedWorker,
    alice: User,
    shown: bool,
) -> None:
    message = await _grid(fake_discord, worker, alice, "a forged variation")
    job_id = 1
    before = await _public_ids(fake_discord)

    click = await fake_discord.forge_click(
        message, f"imagine:v:{job_id}:7", user=alice, shown=shown
    )
    assert await _refused(fake_discord, click) == (
        f"This button cannot be used: image index '7' is outside 0-3 (a grid has 4 images). "
        f"{NOTHING}"
    )
    await _nothing_happened(bot_run, fake_discord, before, alice, used=4)
    assert bot_run.storage is not None
    jobs = await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus))
    assert [(j.id, j.kind) for j in jobs] == [(job_id, JobKind.IMAGINE)]
    fake_discord.assert_all_acked()


@pytest.mark.parametrize(
    ("custom_id", "problem"),
    [
        ("imagine:zoom:1:0", "unknown button action 'zoom'"),
        (f"imagine:v:{MAX_JOB_ID + 1}:0", f"job id {MAX_JOB_ID + 1} is out of range{RANGE}"),
        ("imagine:v:99999999999999999999:0", f"job id '{'9' * 20}' is not a job number{RANGE}"),
        ("imagine:v:\u0661:0", f"job id '\u0661' is not a job number{RANGE}"),
        ("imagine:v:1", "not an imagine button: 'imagine:v:1'"),
    ],
)
async def test_malformed_ids_on_the_message_get_a_clear_private_answer(
    fake_discord: FakeDiscord,
    bot_run: BotRun,
    worker: ScriptedWorker,
    alice: User,
    custom_id: str,
    problem: str,
) -> None:
    message = await _grid(fake_discord, worker, alice, "an old message")
    before = await _public_ids(fake_discord)
    click = await fake_discord.forge_click(message, custom_id, user=alice, shown=True)
    text = await _refused(fake_discord, click)
    assert text == f"This button cannot be used: {problem}. {NOTHING}"
    await _nothing_happened(bot_run, fake_discord, before, alice, used=4)


async def test_a_valid_id_that_is_not_on_the_clicked_message_is_refused(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    message = await _grid(fake_discord, worker, alice, "not this one")
    before = await _public_ids(fake_discord)
    click = await fake_discord.forge_click(message, "imagine:upsubtle:1:2", user=alice)
    assert await _refused(fake_discord, click) == (
        f"This button cannot be used: it is not one of the buttons on that message. {NOTHING}"
    )
    await _nothing_happened(bot_run, fake_discord, before, alice, used=4)


async def _upscale(
    fake: FakeDiscord,
    run: BotRun,
    worker: ScriptedWorker,
    grid: Message,
    user: User,
    size: tuple[int, int],
) -> tuple[Job, Message]:
    """U1, then Upscale (Subtle) finished with an image of ``size``: the job and its message."""
    assert run.storage is not None
    await (await fake.click(grid, grid.button("U1").custom_id or "", user=user)).wait_acked()
    single = await _single(fake, 1)
    upscale = single.button("Upscale (Subtle)").custom_id or ""
    await (await fake.click(single, upscale, user=user)).wait_acked()
    message = await fake.wait_for_message(
        lambda m: m.id not in (grid.id, single.id) and "Waiting to start" in m.content
    )
    job = await worker.claim()
    assert job.kind is JobKind.UPSCALE
    blob = await run.storage.images.put(png((90, 90, 90)))
    stored = [StoredImage(0, blob.sha256, *size, job.seed, blob.size, str(blob.path))]
    job = await run.storage.queue.finish(job.id, worker.worker_id, stored, gpu_seconds=0.5)
    await fake.wait_for(lambda: bool(message.buttons) and bool(message.attachments))
    return job, message


@pytest.mark.parametrize(("action", "label"), [("u", "U"), ("v", "V"), ("reroll", "🔄")])
async def test_grid_buttons_on_an_upscale_are_refused(
    fake_discord: FakeDiscord,
    bot_run: BotRun,
    worker: ScriptedWorker,
    alice: User,
    action: str,
    label: str,
) -> None:
    grid = await _grid(fake_discord, worker, alice, "one big image")
    upscale, message = await _upscale(fake_discord, bot_run, worker, grid, alice, (64, 64))
    before = await _public_ids(fake_discord)
    click = await fake_discord.forge_click(
        message, f"imagine:{action}:{upscale.id}:0", user=alice, shown=True
    )
    assert await _refused(fake_discord, click) == (
        f"This button cannot be used: {label} buttons belong to a grid of 4 images, and job "
        f"#{upscale.id} is a single upscale image. {NOTHING}"
    )
    await _nothing_happened(bot_run, fake_discord, before, alice, used=5)


async def test_an_upscale_over_the_pixel_cap_is_refused_before_charging(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    grid = await _grid(fake_discord, worker, alice, "upscaled twice already")
    upscale, message = await _upscale(fake_discord, bot_run, worker, grid, alice, (4096, 4096))
    before = await _public_ids(fake_discord)
    click = await fake_discord.forge_click(
        message, f"imagine:upcreative:{upscale.id}:0", user=alice, shown=True
    )
    assert await _refused(fake_discord, click) == (
        f"Image #1 of job #{upscale.id} is 4096x4096; Upscale takes images of at most "
        f"4,194,304 pixels (2048x2048), so it cannot be upscaled again. {NOTHING}"
    )
    await _nothing_happened(bot_run, fake_discord, before, alice, used=5)


async def test_a_repeat_u_click_links_to_the_earlier_post_even_after_a_restart(
    fake_discord: FakeDiscord, bot_settings: Settings, alice: User, bob: User
) -> None:
    first = BotRun(bot_settings)
    await first.start(fake_discord)
    try:
        assert first.storage is not None
        grid = await _grid(fake_discord, ScriptedWorker(first.storage), alice, "posted once")
        u1 = grid.button("U1").custom_id or ""
        await (await fake_discord.click(grid, u1, user=alice)).wait_acked()
        single = await _single(fake_discord, 1)
        link = (
            f"https://discord.com/channels/{fake_discord.guild.id}/{single.channel_id}/{single.id}"
        )
        expected = f"Image #1 of job #1 is already posted: {link}"
        # The public post appears a moment before the bot records it; until then a repeat
        # click is told the post is on its way (test_two_clicks_at_once_make_one_post).
        assert first.services is not None
        posts = first.services.posts
        await eventually(lambda: posts.get(1, 0))
        for user in (alice, bob):
            again = await fake_discord.click(grid, u1, user=user)
            assert await ephemeral_reply(fake_discord, again) == expected
    finally:
        await first.stop()

    second = BotRun(bot_settings)
    await second.start(fake_discord)
    try:
        again = await fake_discord.click(grid, u1, user=bob)
        assert await ephemeral_reply(fake_discord, again) == expected
    finally:
        await second.stop()
    assert [m.id for m in fake_discord.channel_messages()] == [grid.id, single.id]


async def test_two_clicks_at_once_make_one_post(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User, bob: User
) -> None:
    grid = await _grid(fake_discord, worker, alice, "raced")
    u3 = grid.button("U3").custom_id or ""
    # Both clicks are in flight before the bot answers either.
    clicks = [await fake_discord.click(grid, u3, user=user) for user in (alice, bob)]
    single = await _single(fake_discord, 3)
    answers = await fake_discord.wait_for(
        lambda: [a for c in clicks for a in _private_answers(c)] or None,
        what="the private answer to the second click",
    )
    link = f"https://discord.com/channels/{fake_discord.guild.id}/{single.channel_id}/{single.id}"
    assert len(answers) == 1 and answers[0] in (
        "Image #3 of job #1 is being posted right now; it appears in a moment.",
        f"Image #3 of job #1 is already posted: {link}",
    )
    await fake_discord.wait_all_acked()
    assert [m.id for m in fake_discord.channel_messages()] == [grid.id, single.id]


async def test_u_buttons_have_a_cooldown_per_user(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], alice: User, bob: User
) -> None:
    run = BotRun(Settings.load({**bot_environ, "IMAGINE_U_COOLDOWN_SECONDS": "3600"}))
    await run.start(fake_discord)
    try:
        assert run.storage is not None
        grid = await _grid(fake_discord, ScriptedWorker(run.storage), alice, "slow down")
        await (
            await fake_discord.click(grid, grid.button("U1").custom_id or "", user=alice)
        ).wait_acked()
        await _single(fake_discord, 1)
        too_soon = await fake_discord.click(grid, grid.button("U2").custom_id or "", user=alice)
        assert await ephemeral_reply(fake_discord, too_soon) == (
            "You can post one image every 3600 seconds; try again in 3600 s."
        )
        # The cooldown is the clicker's own: someone else may post image 2.
        await (
            await fake_discord.click(grid, grid.button("U2").custom_id or "", user=bob)
        ).wait_acked()
        posted = await _single(fake_discord, 2)
        assert posted.content.endswith(f"Image #2 <@{bob.id}>")
        assert len(fake_discord.channel_messages()) == 3
    finally:
        await run.stop()


async def test_a_banned_user_cannot_post_single_images(
    fake_discord: FakeDiscord,
    bot_run: BotRun,
    worker: ScriptedWorker,
    alice: User,
    bob: User,
) -> None:
    grid = await _grid(fake_discord, worker, alice, "not for bob")
    assert bot_run.storage is not None
    await bot_run.storage.users.ban(bob.id)
    click = await fake_discord.click(grid, grid.button("U1").custom_id or "", user=bob)
    assert await ephemeral_reply(fake_discord, click) == (
        "You are banned from generating images here."
    )
    assert [m.id for m in fake_discord.channel_messages()] == [grid.id]
