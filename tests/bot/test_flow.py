"""The bot against the fake Discord and real storage, with a scripted worker.

The worker side is driven step by step, so each state a user can see (waiting, progress,
result, failure, cancel) is asserted exactly; ``test_end_to_end.py`` runs the real worker.
"""

from __future__ import annotations

from imagine.settings import Settings
from storage.bundle import open_storage
from storage.contract import Job, JobKind, JobStatus
from tests.bot.harness import BotRun, ScriptedWorker, button_rows, ephemeral_reply, eventually, png
from tests.fakediscord import FakeDiscord, Message, User


def _waiting(prompt: str) -> str:
    return f"**{prompt}** - "


async def _imagine(fake: FakeDiscord, user: User, prompt: str) -> Message:
    interaction = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    response = await interaction.wait_acked()
    assert response.ephemeral  # only the user sees the acknowledgement
    return await fake.wait_for_message(
        lambda m: (
            m.content.startswith(f"**{prompt.split(' --')[0]}")
            and m.content.endswith("(Waiting to start)")
            and m.interaction is None
        ),
    )


def _fresh_messages(fake: FakeDiscord, before: set[int]) -> list[Message]:
    return [m for m in fake.channel_messages() if m.id not in before]


async def test_imagine_acks_at_once_and_posts_the_job_message(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    interaction = await fake_discord.invoke_command(
        "imagine", {"prompt": "a red fox --ar 3:2 --seed 7"}, user=alice
    )
    response = await interaction.wait_acked()
    assert response.ephemeral
    assert interaction.ack_latency is not None and interaction.ack_latency < 1.0
    message = await fake_discord.wait_for_message(
        lambda m: "(Waiting to start)" in m.content and not m.ephemeral
    )
    assert message.content == f"**a red fox --ar 3:2 --seed 7** - <@{alice.id}> (Waiting to start)"
    assert [b.emoji for b in message.buttons] == ["❌"]
    assert await ephemeral_reply(fake_discord, interaction) == "Queued 1 job: #1."

    assert bot_run.storage is not None
    job = await bot_run.storage.queue.get(1)
    assert (job.user_id, job.message_id, job.channel_id) == (
        alice.id,
        message.id,
        message.channel_id,
    )
    assert job.request.aspect == "3:2" and job.seed == 7
    fake_discord.assert_all_acked()


async def test_progress_then_result_delivered_once(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    message = await _imagine(fake_discord, alice, "a lighthouse at dusk --seed 11")
    job = await worker.claim()
    preview = png((10, 20, 30), (16, 16))
    job = await worker.progress(job, 50, preview)
    await fake_discord.wait_for(
        lambda: message.content.endswith("(50%)") and message.attachments,
        what="the 50% progress edit",
    )
    assert message.attachments[0].data == preview
    assert [b.emoji for b in message.buttons] == ["❌"]

    await worker.finish(job)
    await fake_discord.wait_for(lambda: message.content.endswith("(fast)"), what="the result edit")
    assert message.content == f"**a lighthouse at dusk --seed 11** - <@{alice.id}> (fast)"
    grid = message.attachments[0]
    assert grid.filename.endswith(".png") and (grid.width, grid.height) == (64, 64)
    assert button_rows(message) == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]

    assert bot_run.storage is not None
    delivered = await eventually(lambda: _delivered(bot_run, job.id))
    assert delivered.delivered_at is not None
    # Exactly one revision carries the result, and nothing edits the message after it.
    finals = [r for r in message.history if r.content.endswith("(fast)")]
    assert len(finals) == 1 and message.history[-1] is finals[0]
    assert not fake_discord.unhandled_requests()


async def _delivered(run: BotRun, job_id: int) -> Job | None:
    assert run.storage is not None
    job = await run.storage.queue.get(job_id)
    return job if job.delivered_at is not None else None


async def test_u_button_posts_the_single_image_with_its_buttons(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User, bob: User
) -> None:
    message = await _imagine(fake_discord, alice, "a blue whale --seed 3")
    job = await worker.finish(await worker.claim())
    await fake_discord.wait_for(lambda: len(message.buttons) == 9, what="the grid buttons")
    before = {m.id for m in fake_discord.channel_messages()}

    click = await fake_discord.click(message, message.button("U2").custom_id or "", user=bob)
    await click.wait_acked()
    single = await fake_discord.wait_for(
        lambda: next(iter(_fresh_messages(fake_discord, before)), None), what="the U2 message"
    )
    assert single.content == f"**a blue whale --seed 3** - Image #2 <@{bob.id}>"
    assert single.attachments[0].data == png(worker.colors[1])
    labels = [b.label or b.emoji for b in single.buttons]
    assert labels == [
        "Upscale (Subtle)",
        "Upscale (Creative)",
        "Vary (Subtle)",
        "Vary (Strong)",
        "🔄",
        "Zoom Out 2x",
        "Zoom Out 1.5x",
        "Custom Zoom",
        "⬅️",
        "➡️",
        "⬆️",
        "⬇️",
    ]
    # U buttons cost nothing and run nothing.
    assert bot_run.storage is not None
    assert (await bot_run.storage.quotas.status(bob.id)).used == 0
    assert await bot_run.storage.queue.claim("nobody") == []
    assert job.status is JobStatus.SUCCEEDED


async def test_v_and_reroll_buttons_queue_new_jobs_with_new_messages(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    message = await _imagine(fake_discord, alice, "a castle --seed 5")
    parent = await worker.finish(await worker.claim())
    await fake_discord.wait_for(lambda: len(message.buttons) == 9, what="the grid buttons")

    await (
        await fake_discord.click(message, message.button("V3").custom_id or "", user=alice)
    ).wait_acked()
    variation = await fake_discord.wait_for_message(lambda m: "Variations (Strong)" in m.content)
    await (
        await fake_discord.click(message, message.button("🔄").custom_id or "", user=alice)
    ).wait_acked()
    await fake_discord.wait_for(
        lambda: (
            sum(m.content.endswith("(Waiting to start)") for m in fake_discord.channel_messages())
            == 2
        ),
        what="the reroll job message",
    )
    assert bot_run.storage is not None
    queue = bot_run.storage.queue
    v_job, r_job = await queue.get(parent.id + 1), await queue.get(parent.id + 2)
    assert (v_job.kind, v_job.parent_job_id, v_job.parent_index, v_job.strength) == (
        JobKind.VARIATION,
        parent.id,
        2,
        0.85,
    )
    assert v_job.message_id == variation.id
    assert r_job.kind is JobKind.REROLL and r_job.seed != parent.seed
    assert r_job.request.prompt == parent.request.prompt
    assert (await bot_run.storage.quotas.status(alice.id)).used == 12


async def test_cancel_button_cancels_and_refunds(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    message = await _imagine(fake_discord, alice, "a slow painting")
    assert bot_run.storage is not None
    assert (await bot_run.storage.quotas.status(alice.id)).used == 4
    click = await fake_discord.click(message, message.button("❌").custom_id or "", user=alice)
    await click.wait_acked()
    assert (
        await ephemeral_reply(fake_discord, click) == "Cancelled job #1. Its 4 images are refunded."
    )
    await fake_discord.wait_for(lambda: message.content.endswith("(Cancelled, refunded)"))
    assert message.buttons == []

    info = await fake_discord.invoke_command("info", user=alice)
    text = await ephemeral_reply(fake_discord, info)
    assert "Quota: 0 of 40 images used per day, 40 left" in text


async def test_someone_else_cannot_cancel_your_job(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User, bob: User
) -> None:
    message = await _imagine(fake_discord, alice, "mine only")
    click = await fake_discord.click(message, message.button("❌").custom_id or "", user=bob)
    assert "belongs to another user" in await ephemeral_reply(fake_discord, click)
    assert bot_run.storage is not None
    assert (await bot_run.storage.queue.get(1)).status is JobStatus.QUEUED


async def test_failed_job_says_why_and_refunds(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    message = await _imagine(fake_discord, alice, "a cursed image")
    job = await worker.claim()
    await worker.fail(
        job, "internal error (reference 5eed1e55)\nRuntimeError: /opt/cuda: fell over"
    )
    await fake_discord.wait_for(lambda: "(Failed:" in message.content, what="the failure edit")
    assert message.content.endswith(
        "(Failed: internal error (reference 5eed1e55); 4 images refunded)"
    )
    assert bot_run.storage is not None
    assert (await bot_run.storage.queue.get(job.id)).error == (
        "internal error (reference 5eed1e55)\nRuntimeError: /opt/cuda: fell over"
    )
    assert message.buttons == []
    assert bot_run.storage is not None
    assert (await bot_run.storage.quotas.status(alice.id)).used == 0


async def test_bad_prompt_gets_the_parser_message_and_nothing_is_stored(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    interaction = await fake_discord.invoke_command(
        "imagine", {"prompt": "a fox --ar 7:1"}, user=alice
    )
    response = await interaction.wait_acked()
    assert response.ephemeral and response.type == 4  # answered at once, no thinking
    assert response.content == ("`--ar 7:1` is too extreme; allowed ratios range from 1:4 to 4:1")
    assert fake_discord.channel_messages() == []
    assert bot_run.storage is not None
    assert await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus)) == []


async def test_banned_word_is_refused(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User, boss: User
) -> None:
    add = await fake_discord.invoke_command("admin words add", {"word": "gore"}, user=boss)
    assert "now refused" in await ephemeral_reply(fake_discord, add)
    interaction = await fake_discord.invoke_command(
        "imagine", {"prompt": "lots of G.O.R.E everywhere"}, user=alice
    )
    response = await interaction.wait_acked()
    assert response.ephemeral and "gore" in (response.content or "")
    assert fake_discord.channel_messages() == []


async def test_quota_exhausted_is_refused_and_nothing_queued(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User, boss: User
) -> None:
    set_quota = await fake_discord.invoke_command(
        "admin quota set", {"user": alice, "images": 4, "period": "day"}, user=boss
    )
    assert "Quota: 0 of 4 images used per day" in await ephemeral_reply(fake_discord, set_quota)
    await _imagine(fake_discord, alice, "first one")
    second = await fake_discord.invoke_command("imagine", {"prompt": "second one"}, user=alice)
    refusal = await ephemeral_reply(fake_discord, second)
    assert "quota" in refusal.lower()
    assert len(fake_discord.channel_messages()) == 1
    assert bot_run.storage is not None
    assert len(await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus))) == 1


async def test_admin_commands_refuse_non_admins_and_change_nothing(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User, bob: User
) -> None:
    # Discord would hide /admin from bob; a forged call must still change nothing.
    forged = await fake_discord.invoke_command(
        "admin quota set",
        {"user": alice, "images": 1000, "period": "total"},
        user=bob,
        check_permissions=False,
    )
    assert "Only server admins" in await ephemeral_reply(fake_discord, forged)
    assert bot_run.storage is not None
    status = await bot_run.storage.quotas.status(alice.id)
    assert (status.limit, status.period, status.custom) == (40, "day", False)
    definition = fake_discord.find_command("admin").definition
    assert int(definition["default_member_permissions"]) == 1 << 5  # Manage Server


async def test_admin_by_configured_user_id(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], alice: User, bob: User
) -> None:
    run = BotRun(Settings.load({**bot_environ, "IMAGINE_ADMIN_USER_IDS": f"[{bob.id}]"}))
    await run.start(fake_discord)
    try:
        ban = await fake_discord.invoke_command(
            "admin ban", {"user": alice}, user=bob, check_permissions=False
        )
        assert "banned" in await ephemeral_reply(fake_discord, ban)
        refused = await fake_discord.invoke_command("imagine", {"prompt": "hello"}, user=alice)
        assert "banned" in (await ephemeral_reply(fake_discord, refused)).lower()
        queue_info = await fake_discord.invoke_command(
            "admin queue", user=bob, check_permissions=False
        )
        assert (await ephemeral_reply(fake_discord, queue_info)).startswith("Queue: 0 waiting")
    finally:
        await run.stop()


async def test_info_lists_running_and_queued_jobs(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    assert bot_run.storage is not None
    await bot_run.storage.queue.register_worker(worker.worker_id, "gpu-host", "sdxl")
    await _imagine(fake_discord, alice, "first")
    await _imagine(fake_discord, alice, "second")
    job = await worker.claim()
    await worker.progress(job, 30)
    info = await fake_discord.invoke_command("info", user=alice)
    text = await ephemeral_reply(fake_discord, info)
    assert "Quota: 8 of 40 images used per day, 32 left" in text
    assert "#1 first (running, 30%)" in text
    assert "#2 second (queued, position 1)" in text
    assert "Lifetime images: 0" in text


async def test_settings_menus_change_the_defaults(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    shown = await fake_discord.invoke_command("settings", user=alice)
    await ephemeral_reply(fake_discord, shown)
    menu = shown.original
    assert menu is not None
    assert [s.custom_id for s in menu.selects] == [
        "imagine-settings:aspect",
        "imagine-settings:variation",
        "imagine-settings:stylize",
        "imagine-settings:raw",
        "imagine-settings:mode",
    ]
    choice = await fake_discord.select(menu, "imagine-settings:aspect", ["16:9"], user=alice)
    await choice.wait_acked()
    await fake_discord.wait_for(lambda: "Aspect ratio: 16:9" in menu.content)
    choice = await fake_discord.select(menu, "imagine-settings:variation", ["subtle"], user=alice)
    await fake_discord.wait_for(lambda: "Variation strength: subtle" in menu.content)
    await choice.wait_acked()

    # The new default applies where the prompt is silent.
    message = await _imagine(fake_discord, alice, "a wide valley")
    assert "--ar 16:9" in message.content
    assert bot_run.storage is not None
    settings = await bot_run.storage.users.get_settings(alice.id)
    assert (settings.aspect, str(settings.variation)) == ("16:9", "subtle")


async def test_foreign_clicks_can_be_refused(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], alice: User, bob: User
) -> None:
    run = BotRun(Settings.load({**bot_environ, "IMAGINE_ALLOW_FOREIGN_CLICKS": "false"}))
    await run.start(fake_discord)
    try:
        assert run.storage is not None
        message = await _imagine(fake_discord, alice, "private fox")
        await ScriptedWorker(run.storage).finish(await ScriptedWorker(run.storage).claim())
        await fake_discord.wait_for(lambda: len(message.buttons) == 9)
        click = await fake_discord.click(message, message.button("V1").custom_id or "", user=bob)
        assert "Only the person who started this job" in await ephemeral_reply(fake_discord, click)
        assert (await run.storage.quotas.status(bob.id)).used == 0
    finally:
        await run.stop()


async def test_restart_delivers_once_and_old_buttons_work(
    fake_discord: FakeDiscord, bot_settings: Settings, alice: User
) -> None:
    first = BotRun(bot_settings)
    await first.start(fake_discord)
    message = await _imagine(fake_discord, alice, "survives restarts --seed 9")
    assert first.storage is not None
    worker = ScriptedWorker(first.storage)
    job = await worker.claim()
    await worker.progress(job, 40)
    await fake_discord.wait_for(lambda: message.content.endswith("(40%)"))
    await first.stop()  # the bot goes away mid-job

    second = BotRun(bot_settings)
    assert second.settings is bot_settings
    try:
        # The job finishes while no bot is running; the next bot delivers it.
        async with await open_storage(bot_settings.storage()) as storage:
            await ScriptedWorker(storage).finish(job)
        await second.start(fake_discord)
        await fake_discord.wait_for(lambda: message.content.endswith("(fast)"))
        await eventually(lambda: _delivered(second, job.id))
        assert sum(r.content.endswith("(fast)") for r in message.history) == 1
        assert [m.id for m in fake_discord.channel_messages()] == [message.id]

        click = await fake_discord.click(message, message.button("U1").custom_id or "", user=alice)
        await click.wait_acked()
        single = await fake_discord.wait_for(
            lambda: next(iter(_fresh_messages(fake_discord, {message.id})), None)
        )
        assert single.content.endswith(f"Image #1 <@{alice.id}>")
    finally:
        await second.stop()


async def test_image_prompt_to_a_private_address_is_refused(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    command = await fake_discord.invoke_command(
        "imagine", {"prompt": "http://127.0.0.1/x.png a cat"}, user=alice
    )
    response = await command.wait_acked()
    assert response.ephemeral
    text = await ephemeral_reply(fake_discord, command)
    assert text.startswith("Could not use the image http://127.0.0.1/x.png:")
    assert "127.0.0.1" in text.split(":", 2)[-1]
    assert fake_discord.channel_messages() == []
    assert bot_run.storage is not None
    assert await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus)) == []
    assert (await bot_run.storage.quotas.status(alice.id)).used == 0


async def test_attached_image_is_stored_and_given_to_the_job(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    picture = png((1, 2, 3), (48, 40))
    command = await fake_discord.invoke_command(
        "imagine", {"prompt": "like this but blue"}, user=alice, attachments=[("ref.png", picture)]
    )
    assert await ephemeral_reply(fake_discord, command) == "Queued 1 job: #1."
    assert bot_run.storage is not None
    job = await bot_run.storage.queue.get(1)
    assert len(job.input_images) == 1
    assert await bot_run.storage.images.get(job.input_images[0]) == picture


async def test_attachment_that_is_not_an_image_is_refused(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    command = await fake_discord.invoke_command(
        "imagine",
        {"prompt": "like this"},
        user=alice,
        attachments=[("notes.png", b"not a picture")],
    )
    text = await ephemeral_reply(fake_discord, command)
    assert text == (
        "The attachment 'notes.png' was refused: the file is not a PNG, JPEG, WebP or GIF image."
    )
    assert bot_run.storage is not None
    assert await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus)) == []


async def test_results_arrive_after_the_interaction_token_expired(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    command = await fake_discord.invoke_command("imagine", {"prompt": "a long job"}, user=alice)
    message = await fake_discord.wait_for_message(lambda m: m.content.startswith("**a long job"))
    await ephemeral_reply(fake_discord, command)
    command.expire_token()  # 15 minutes later: the interaction webhook is gone
    await worker.finish(await worker.claim())
    await fake_discord.wait_for(lambda: len(message.buttons) == 9, what="the result")
    assert message.history[-1].via == "channel"  # edited with the bot token


async def test_rate_limited_edits_are_retried_and_delivered_once(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    message = await _imagine(fake_discord, alice, "busy channel")
    rule = fake_discord.rate_limit(
        "PATCH", "/channels/{channel_id}/messages/{message_id}", times=3, retry_after=0.2
    )
    await worker.finish(await worker.claim())
    await fake_discord.wait_for(lambda: len(message.buttons) == 9, what="the result")
    assert rule.hits == 3  # every 429 was served and waited out
    assert sum(r.content.endswith("(fast)") for r in message.history) == 1
    assert bot_run.storage is not None
    await eventually(lambda: _delivered(bot_run, 1))


async def test_deleted_job_message_gets_its_result_in_a_new_message(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    message = await _imagine(fake_discord, alice, "deleted meanwhile")
    message.deleted = True  # a moderator removed it while the job ran
    await worker.finish(await worker.claim())
    result = await fake_discord.wait_for_message(
        lambda m: m.id != message.id and m.content.startswith("**deleted meanwhile")
    )
    await fake_discord.wait_for(lambda: len(result.buttons) == 9, what="the result")
    assert bot_run.storage is not None
    job = await eventually(lambda: _delivered(bot_run, 1))
    assert job.message_id == result.id


async def test_the_same_click_delivered_twice_makes_one_job(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    message = await _imagine(fake_discord, alice, "one variation only")
    await worker.finish(await worker.claim())
    await fake_discord.wait_for(lambda: len(message.buttons) == 9)
    click = await fake_discord.click(message, message.button("V2").custom_id or "", user=alice)
    await click.wait_acked()
    await fake_discord.dispatch("INTERACTION_CREATE", click.payload)  # the same interaction again
    await fake_discord.wait_for_message(lambda m: "Variations" in m.content)
    assert bot_run.storage is not None
    jobs = await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus))
    assert [j.kind for j in jobs] == [JobKind.IMAGINE, JobKind.VARIATION]
    assert (await bot_run.storage.quotas.status(alice.id)).used == 8


async def test_cancel_command_cancels_all_queued_jobs(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    await _imagine(fake_discord, alice, "first of two")
    await _imagine(fake_discord, alice, "second of two")
    cancel = await fake_discord.invoke_command("cancel", user=alice)
    assert await ephemeral_reply(fake_discord, cancel) == (
        "#1: cancelled, 4 images refunded\n#2: cancelled, 4 images refunded"
    )
    nothing = await fake_discord.invoke_command("cancel", user=alice)
    assert await ephemeral_reply(fake_discord, nothing) == "You have no queued or running jobs."
    assert bot_run.storage is not None
    assert (await bot_run.storage.quotas.status(alice.id)).used == 0


async def test_repeat_makes_one_message_per_job(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    command = await fake_discord.invoke_command(
        "imagine", {"prompt": "a {red, blue} kite --seed 4"}, user=alice
    )
    assert await ephemeral_reply(fake_discord, command) == "Queued 2 jobs: #1, #2."
    contents = sorted(m.content for m in fake_discord.channel_messages())
    assert contents == [
        f"**a blue kite --seed 4** - <@{alice.id}> (Waiting to start)",
        f"**a red kite --seed 4** - <@{alice.id}> (Waiting to start)",
    ]
    assert bot_run.storage is not None
    jobs = await bot_run.storage.queue.user_jobs(alice.id, [JobStatus.QUEUED])
    assert sorted(j.message_id or 0 for j in jobs) == sorted(
        m.id for m in fake_discord.channel_messages()
    )


async def test_flow_on_each_database(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], database_url: str, alice: User
) -> None:
    """The same job life on SQLite and PostgreSQL (LISTEN/NOTIFY wakes the delivery loop)."""
    run = BotRun(Settings.load({**bot_environ, "IMAGINE_DATABASE_URL": database_url}))
    await run.start(fake_discord)
    try:
        assert run.storage is not None
        worker = ScriptedWorker(run.storage)
        message = await _imagine(fake_discord, alice, "portable --seed 2")
        job = await worker.claim()
        await worker.progress(job, 60)
        await fake_discord.wait_for(lambda: message.content.endswith("(60%)"))
        await worker.finish(job)
        await fake_discord.wait_for(lambda: len(message.buttons) == 9, what="the result")
        await eventually(lambda: _delivered(run, job.id))
        click = await fake_discord.click(message, message.button("U4").custom_id or "", user=alice)
        await click.wait_acked()
        single = await fake_discord.wait_for_message(lambda m: "Image #4" in m.content)
        assert single.attachments[0].data == png(worker.colors[3])
    finally:
        await run.stop()
