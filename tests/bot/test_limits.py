"""Quota bounds and caps as an admin and a user meet them through Discord."""

from __future__ import annotations

import pytest

from imagine.settings import Settings
from storage.contract import JobStatus
from storage.limits import MAX_CAPS, MAX_IMAGES
from tests.bot.harness import BotRun, ephemeral_reply
from tests.fakediscord import CommandInputError, FakeDiscord, User


async def test_admin_quota_bounds_are_the_ones_the_cli_uses(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User, boss: User
) -> None:
    # Discord itself refuses a value past the synced bound, so the bot never sees it.
    with pytest.raises(CommandInputError, match=f"at most {MAX_IMAGES}, got {MAX_IMAGES + 1}"):
        await fake_discord.invoke_command(
            "admin quota set", {"user": alice, "images": MAX_IMAGES + 1, "period": "day"}, user=boss
        )
    with pytest.raises(CommandInputError, match=f"at most {MAX_CAPS['max_queued']}"):
        await fake_discord.invoke_command(
            "admin limits", {"max_queued": MAX_CAPS["max_queued"] + 1}, user=boss
        )
    top = await fake_discord.invoke_command(
        "admin quota set", {"user": alice, "images": MAX_IMAGES, "period": "total"}, user=boss
    )
    assert f"Quota: 0 of {MAX_IMAGES} images used in total" in await ephemeral_reply(
        fake_discord, top
    )
    caps = await fake_discord.invoke_command(
        "admin limits",
        {"user": alice, "max_concurrent": MAX_CAPS["max_concurrent"]},
        user=boss,
    )
    assert "Caps: 100 running at once" in await ephemeral_reply(fake_discord, caps)
    assert bot_run.storage is not None
    status = await bot_run.storage.quotas.status(alice.id)
    assert (status.limit, status.max_concurrent) == (MAX_IMAGES, MAX_CAPS["max_concurrent"])


async def test_relax_mode_is_capped_per_user_per_day(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], alice: User, bob: User
) -> None:
    run = BotRun(Settings.load({**bot_environ, "IMAGINE_RELAX_IMAGES_PER_DAY": "8"}))
    await run.start(fake_discord)
    try:
        first = await fake_discord.invoke_command(
            "imagine", {"prompt": "a quiet lake --relax --r 2"}, user=alice
        )
        assert await ephemeral_reply(fake_discord, first) == "Queued 2 jobs: #1, #2."
        refused = await fake_discord.invoke_command(
            "imagine", {"prompt": "one more lake --relax"}, user=alice
        )
        text = await ephemeral_reply(fake_discord, refused)
        assert text.startswith(
            "Relax mode is limited to 8 images a day: you have made 8 today and this needs 4."
        )
        assert text.endswith("fast mode uses your image quota instead.")
        other = await fake_discord.invoke_command(
            "imagine", {"prompt": "bob's lake --relax"}, user=bob
        )
        assert await ephemeral_reply(fake_discord, other) == "Queued 1 job: #3."

        info = await fake_discord.invoke_command("info", user=alice)
        lines = (await ephemeral_reply(fake_discord, info)).splitlines()
        assert "Quota: 0 of 40 images used per day, 40 left" in lines
        assert "Relax mode: 8 of 8 images today" in lines
        assert run.storage is not None
        assert len(await run.storage.queue.user_jobs(alice.id, list(JobStatus))) == 2
    finally:
        await run.stop()
