"""Quota bounds and caps as an admin and a user meet them through Discord."""

from __future__ import annotations

import pytest

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
