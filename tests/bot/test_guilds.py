"""Admin rights per guild, and the guild allowlist, with two guilds in the fake Discord.

The bot syncs its commands globally, so every guild it is invited to offers them: the way a
stranger would invite it to a server of their own and try /admin there.
"""

from __future__ import annotations

from typing import Any

import pytest

from imagine.settings import Settings
from storage.contract import JobStatus
from tests.bot.harness import BotRun, ephemeral_reply
from tests.fakediscord import FakeDiscord, User
from tests.fakediscord.guild import Guild

START_AND_LEAVE = 15.0  # discord.py reports start-up guilds after its 2 s guild wait


@pytest.fixture
def elsewhere(fake_discord: FakeDiscord) -> Guild:
    """A stranger's server the bot was invited to; its owner has every permission there."""
    return fake_discord.add_guild("Mallory's Server")


def _settings(bot_environ: dict[str, str], fake: FakeDiscord, **more: str) -> Settings:
    return Settings.load(
        {
            **bot_environ,
            "IMAGINE_GUILD_IDS": "[]",  # global commands: every guild gets them
            "IMAGINE_ADMIN_GUILD_IDS": f"[{fake.guild.id}]",
            **more,
        }
    )


async def test_manage_server_elsewhere_is_refused_and_changes_nothing(
    fake_discord: FakeDiscord,
    bot_environ: dict[str, str],
    elsewhere: Guild,
    alice: User,
    boss: User,
) -> None:
    mallory = elsewhere.owner
    there = elsewhere.channels[0]
    run = BotRun(_settings(bot_environ, fake_discord))
    await run.start(fake_discord)
    try:
        assert run.storage is not None
        ban = await fake_discord.invoke_command("admin ban", {"user": mallory}, user=boss)
        assert await ephemeral_reply(fake_discord, ban) == (
            f"{mallory.mention} is banned from making images."
        )
        attempts: list[tuple[str, dict[str, Any]]] = [
            ("admin unban", {"user": mallory}),
            ("admin quota set", {"user": mallory, "images": 1_000_000, "period": "total"}),
            ("admin ban", {"user": alice}),
            ("admin limits", {"max_queued": 1000}),
            ("admin words add", {"word": "harmless"}),
        ]
        for name, options in attempts:
            # Mallory owns that server: Discord itself offers them /admin there.
            command = await fake_discord.invoke_command(name, options, user=mallory, channel=there)
            assert await ephemeral_reply(fake_discord, command) == (
                "Manage Server makes you an admin of this bot only in its home servers "
                "(admin_guild_ids, or guild_ids); here, only the users and roles in "
                "admin_user_ids / admin_role_ids may use /admin."
            ), name
        assert await run.storage.users.is_banned(mallory.id)
        assert not await run.storage.users.is_banned(alice.id)
        status = await run.storage.quotas.status(mallory.id)
        assert (status.limit, status.period, status.custom) == (40, "day", False)
        assert (await run.storage.quotas.server_limits()).max_queued == 10
        assert await run.storage.users.banned_words() == []
        refused = await fake_discord.invoke_command(
            "imagine", {"prompt": "still banned"}, user=mallory, channel=there
        )
        assert "banned" in (await ephemeral_reply(fake_discord, refused)).lower()

        # The home server's admin is still an admin.
        quota = await fake_discord.invoke_command(
            "admin quota set", {"user": alice, "images": 7, "period": "day"}, user=boss
        )
        assert "Quota: 0 of 7 images used per day" in await ephemeral_reply(fake_discord, quota)
        unban = await fake_discord.invoke_command("admin unban", {"user": mallory}, user=boss)
        assert (
            await ephemeral_reply(fake_discord, unban)
            == f"{mallory.mention} may make images again."
        )
    finally:
        await run.stop()


async def test_a_listed_user_is_an_admin_in_any_guild(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], elsewhere: Guild, alice: User
) -> None:
    operator = fake_discord.add_user("operator", guild=elsewhere)
    settings = _settings(bot_environ, fake_discord, IMAGINE_ADMIN_USER_IDS=f"[{operator.id}]")
    run = BotRun(settings)
    await run.start(fake_discord)
    try:
        ban = await fake_discord.invoke_command(
            "admin ban",
            {"user": alice},
            user=operator,
            channel=elsewhere.channels[0],
            check_permissions=False,
        )
        assert (
            await ephemeral_reply(fake_discord, ban)
            == f"{alice.mention} is banned from making images."
        )
    finally:
        await run.stop()


async def test_outside_allowed_guilds_the_bot_refuses_and_leaves(
    fake_discord: FakeDiscord,
    bot_environ: dict[str, str],
    elsewhere: Guild,
    alice: User,
) -> None:
    mallory = elsewhere.owner
    there = elsewhere.channels[0]
    # A job message from before the allowlist, with its buttons.
    old = fake_discord.store(
        fake_discord.new_message(
            there.id,
            fake_discord.bot_user,
            content="**an old job** - <@1> (fast)",
            components=[
                {
                    "type": 1,
                    "components": [
                        {"type": 2, "style": 2, "label": "V1", "custom_id": "imagine:v:1:0"}
                    ],
                }
            ],
        )
    )
    settings = _settings(
        bot_environ, fake_discord, IMAGINE_ALLOWED_GUILD_IDS=f"[{fake_discord.guild.id}]"
    )
    run = BotRun(settings)
    await run.start(fake_discord)
    try:
        assert run.storage is not None
        await fake_discord.wait_for(
            lambda: fake_discord.left_guilds == [elsewhere],
            timeout=START_AND_LEAVE,
            what="the bot to leave the guild outside allowed_guild_ids",
        )
        assert fake_discord.bot_guilds() == [fake_discord.guild]
        refusal = (
            "This bot works only in the servers it was set up for, and this server is not one "
            "of them (allowed_guild_ids); it is leaving."
        )
        # Discord may still deliver interactions from there (the commands are global).
        for name, options in (
            ("imagine", {"prompt": "a fox"}),
            ("admin quota set", {"user": mallory, "images": 1000, "period": "total"}),
            ("info", {}),
        ):
            command = await fake_discord.invoke_command(name, options, user=mallory, channel=there)
            response = await command.wait_acked()
            assert (response.ephemeral, response.content) == (True, refusal), name
        click = await fake_discord.click(old, "imagine:v:1:0", user=mallory)
        assert await ephemeral_reply(fake_discord, click) == refusal
        assert await run.storage.queue.user_jobs(mallory.id, list(JobStatus)) == []
        assert (await run.storage.quotas.status(mallory.id)).custom is False
        assert fake_discord.channel_messages(there) == [old]

        # Invited to another server while running: it leaves at once.
        another = fake_discord.add_guild("Another Server", with_bot=False)
        await fake_discord.invite_bot(another)
        await fake_discord.wait_for(
            lambda: fake_discord.left_guilds == [elsewhere, another], what="the second leave"
        )

        # At home everything works.
        command = await fake_discord.invoke_command("imagine", {"prompt": "a fox"}, user=alice)
        assert await ephemeral_reply(fake_discord, command) == "Queued 1 job: #1."
        assert fake_discord.left_guilds == [elsewhere, another]
    finally:
        await run.stop()
