"""Prompts pasted from Midjourney through the real bot: notes on the job message, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imagine.settings import Settings
from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply, png
from tests.fakediscord import FakeDiscord, Message, User

GALLERY = (
    "ethereal forest spirit, volumetric light --v 7 --style raw --s 250 --ar 16:9 "
    "--sref 2771188990 --exp 15"
)


async def _job_message(fake: FakeDiscord) -> Message:
    return await fake.wait_for_message(
        lambda m: "(Waiting to start)" in m.content and not m.ephemeral and m.interaction is None
    )


async def test_gallery_prompt_paints_and_says_what_was_not_honoured(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    command = await fake_discord.invoke_command("imagine", {"prompt": GALLERY}, user=alice)
    assert await ephemeral_reply(fake_discord, command) == "Queued 1 job: #1."
    message = await _job_message(fake_discord)
    first, notes = message.content.split("\n")
    assert first.startswith("**ethereal forest spirit, volumetric light --ar 16:9 --seed ")
    assert first.endswith(f" --stylize 250 --raw** - <@{alice.id}> (Waiting to start)")
    assert notes == "-# Not as written: --v 7, --sref 2771188990, --exp 15"

    assert bot_run.storage is not None
    job = await worker.claim()
    assert job.request.notes == (
        "--v 7: painted with the default model",
        "--sref 2771188990: Midjourney style codes are not available here",
        "--exp 15: Midjourney's experimental aesthetics are not available here",
    )
    await worker.finish(job)
    await fake_discord.wait_for(lambda: "(fast)" in message.content, what="the result edit")
    assert message.content.split("\n")[1] == notes


async def test_a_plain_prompt_has_no_notes_line(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    command = await fake_discord.invoke_command(
        "imagine", {"prompt": "a red fox --v 6"}, user=alice
    )
    assert await ephemeral_reply(fake_discord, command) == "Queued 1 job: #1."
    message = await _job_message(fake_discord)
    assert message.content.split("\n")[1] == (
        "-# Not as written: --v 6 (painted with the default model)"
    )
    command = await fake_discord.invoke_command(
        "imagine", {"prompt": "a blue fox --ar 3:2"}, user=alice
    )
    assert await ephemeral_reply(fake_discord, command) == "Queued 1 job: #2."
    plain = await fake_discord.wait_for_message(
        lambda m: m.content.startswith("**a blue fox") and "(Waiting to start)" in m.content
    )
    assert "\n" not in plain.content
    assert plain.content.endswith(f" - <@{alice.id}> (Waiting to start)")


async def test_control_needs_an_image_and_an_attachment_counts(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    refused = await fake_discord.invoke_command(
        "imagine", {"prompt": "a house --control canny"}, user=alice
    )
    assert await ephemeral_reply(fake_discord, refused) == (
        "`--control canny` needs an image: put an image URL at the start of the prompt or "
        "attach an image"
    )
    assert fake_discord.channel_messages() == []
    assert bot_run.storage is not None
    # The bot queues --control only for a kind some worker registered a ControlNet for.
    await bot_run.storage.queue.register_worker("gpu-1", "host", "sdxl", {"controlnets": ["canny"]})
    command = await fake_discord.invoke_command(
        "imagine",
        {"prompt": "a house --control canny:0.8"},
        user=alice,
        attachments=[("edges.png", png((1, 2, 3), (48, 40)))],
    )
    assert await ephemeral_reply(fake_discord, command) == "Queued 1 job: #1."
    assert bot_run.storage is not None
    job = await bot_run.storage.queue.get(1)
    assert job.request.control is not None and job.request.control.scale == 0.8
    assert len(job.input_images) == 1


@pytest.fixture
async def strict_bot(
    bot_environ: dict[str, str], fake_discord: FakeDiscord
) -> AsyncIterator[BotRun]:
    """A bot on a server that refuses model versions it has no alias for, with a style."""
    settings = Settings.load(
        {
            **bot_environ,
            "IMAGINE_STRICT_MODELS": "true",
            "IMAGINE_STYLES": '{"cute": "kawaii, pastel colors"}',
        }
    )
    run = BotRun(settings)
    try:
        await run.start(fake_discord)
        yield run
    finally:
        await run.stop()


async def test_strict_models_and_styles_come_from_the_settings(
    fake_discord: FakeDiscord, strict_bot: BotRun, alice: User
) -> None:
    refused = await fake_discord.invoke_command("imagine", {"prompt": "a fox --v 7"}, user=alice)
    assert await ephemeral_reply(fake_discord, refused) == (
        "`--v 7`: model `7` is not available on this server; available: default"
    )
    command = await fake_discord.invoke_command(
        "imagine", {"prompt": "a fox --style cute"}, user=alice
    )
    assert await ephemeral_reply(fake_discord, command) == "Queued 1 job: #1."
    message = await _job_message(fake_discord)
    assert message.content.startswith("**a fox, kawaii, pastel colors --seed ")
    assert "\n" not in message.content
