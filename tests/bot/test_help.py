"""``/help`` through the fake Discord: what the unknown-parameter error points to exists."""

from __future__ import annotations

from bot.prompt._table import SPECS, Treatment
from tests.bot.harness import BotRun, ephemeral_reply
from tests.fakediscord import FakeDiscord, User


async def test_help_lists_every_parameter_privately(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User
) -> None:
    before = len(fake_discord.channel_messages())
    click = await fake_discord.invoke_command("help", user=alice)
    text = await ephemeral_reply(fake_discord, click)
    lines = text.splitlines()
    assert lines[0].startswith("**Prompt:** `/imagine [image URLs] text")
    assert "`--ar` `--aspect`: W:H, whole numbers, 1:4 to 4:1" in lines
    assert "`--seed`: 0..4294967295" in lines
    flags = next(line for line in lines if line.startswith("**Flags**"))
    assert "`--tile`" in flags and "`--turbo`" in flags and "`--seed`" not in flags
    noted = next(line for line in lines if line.startswith("**Accepted from Midjourney"))
    for spec in SPECS:
        shown = noted if spec.treatment is Treatment.NOTED else text
        assert f"`--{spec.names[0]}`" in shown, spec.names
    assert lines[-1].startswith("**Commands:** /settings")
    # Private: nothing new in the channel.
    assert len(fake_discord.channel_messages()) == before
