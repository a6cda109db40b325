"""Banned words are found in what a prompt expands to, not only in what was typed."""

from __future__ import annotations

from storage.contract import JobStatus
from tests.bot.harness import BotRun, ephemeral_reply
from tests.fakediscord import FakeDiscord, User

REFUSAL = "Your prompt was refused: “cat” is not allowed on this server."


async def test_braces_segments_and_negative_prompts_cannot_hide_a_banned_word(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User, boss: User
) -> None:
    add = await fake_discord.invoke_command("admin words add", {"word": "cat"}, user=boss)
    assert "now refused" in await ephemeral_reply(fake_discord, add)
    for prompt in (
        "a {ca}t",
        "a c{a}t on a mat",
        "{big, ca}t",
        "a {ca}t::2 a dog",
        "a dog --no {c}at",
        "a {red, blue} {ca}t --ar 3:2",
    ):
        command = await fake_discord.invoke_command("imagine", {"prompt": prompt}, user=alice)
        response = await command.wait_acked()
        assert (response.ephemeral, response.content) == (True, REFUSAL), prompt
    assert fake_discord.channel_messages() == []
    assert bot_run.storage is not None
    assert await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus)) == []

    # Braces that expand to other words are fine.
    allowed = await fake_discord.invoke_command("imagine", {"prompt": "a {ca}r"}, user=alice)
    assert await ephemeral_reply(fake_discord, allowed) == "Queued 1 job: #1."
