"""Mentions in prompts are shown but notify nobody; job messages ping their owner only."""

from __future__ import annotations

from typing import Any

from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply
from tests.fakediscord import FakeDiscord, Pings, User
from tests.fakediscord._messages import notified


def _bot_writes(fake: FakeDiscord, needle: str) -> list[dict[str, Any]]:
    """Every message body the bot sent (create or edit) whose content contains ``needle``."""
    return [
        r.json
        for r in fake.requests
        if r.method in ("POST", "PATCH")
        and isinstance(r.json, dict)
        and needle in str(r.json.get("content") or "")
    ]


async def test_a_mention_in_a_prompt_pings_nobody_but_the_owner(
    fake_discord: FakeDiscord,
    bot_run: BotRun,
    worker: ScriptedWorker,
    alice: User,
    bob: User,
) -> None:
    carol = fake_discord.add_user("carol")
    mods = fake_discord.add_role("mods")
    prompt = f"a portrait of {carol.mention} with <@&{mods.id}> and @everyone"
    command = await fake_discord.invoke_command("imagine", {"prompt": prompt}, user=alice)
    await ephemeral_reply(fake_discord, command)
    message = await fake_discord.wait_for_message(lambda m: m.content.startswith("**a portrait"))
    assert carol.mention in message.content and alice.mention in message.content
    assert message.pings == Pings(users=(alice.id,))

    job = await worker.claim()
    await worker.progress(job, 50)
    await fake_discord.wait_for(lambda: message.content.endswith("(50%)"), what="progress")
    await worker.finish(job)
    await fake_discord.wait_for(lambda: len(message.buttons) == 9, what="the result")
    click = await fake_discord.click(message, message.button("U1").custom_id or "", user=bob)
    await click.wait_acked()
    single = await fake_discord.wait_for_message(lambda m: "Image #1" in m.content)
    assert carol.mention in single.content
    assert single.pings == Pings(users=(bob.id,))  # the one who asked for it

    # Every create and edit carrying the prompt told Discord not to let carol's mention through.
    writes = _bot_writes(fake_discord, carol.mention)
    assert len(writes) >= 4  # post, progress, result, U1
    for body in writes:
        assert "allowed_mentions" in body
        allowed = notified(body["content"], body["allowed_mentions"])
        assert carol.id not in allowed.users and not allowed.roles and not allowed.everyone


async def test_replies_that_name_users_ping_nobody(
    fake_discord: FakeDiscord, bot_run: BotRun, alice: User, boss: User
) -> None:
    ban = await fake_discord.invoke_command("admin ban", {"user": alice}, user=boss)
    assert (
        await ephemeral_reply(fake_discord, ban) == f"{alice.mention} is banned from making images."
    )
    for body in _bot_writes(fake_discord, alice.mention):
        assert notified(body["content"], body.get("allowed_mentions")) == Pings()
