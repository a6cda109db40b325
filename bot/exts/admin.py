"""``/admin ...``: quotas, limits, bans, the queue and banned words, for server admins only.

Discord hides the group from members without Manage Server (``default_permissions``), but that
is a client-side default a server can change, so every call is checked here again: Manage
Server in one of the bot's home guilds, or a user id / role id from the configuration (see
``bot.permissions``). A refused call changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError, defer_private, reply_private
from bot.fleet import workers_content
from bot.render import queue_content, quota_lines
from bot.web.dashboard import LINK_LIFETIME, login_link
from storage.audit import Actor
from storage.limits import MAX_CONCURRENT, MAX_IMAGES, MAX_QUEUED

if TYPE_CHECKING:
    from bot.client import ImagineBot

Period = Literal["day", "week", "month", "total"]


class NotAdmin(app_commands.CheckFailure):
    """The caller may not use admin commands."""


def _actor(interaction: discord.Interaction) -> Actor:
    """The admin behind a slash command, for the audit log."""
    return Actor(interaction.user.id, "discord")


class Admin(commands.Cog):
    """Server administration commands."""

    admin = app_commands.Group(
        name="admin",
        description="Server administration",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )
    quota = app_commands.Group(name="quota", description="A user's image quota", parent=admin)
    words = app_commands.Group(name="words", description="Banned prompt words", parent=admin)

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.services = bot.services

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Refuse anyone who is not an admin, whatever Discord's permission defaults say."""
        rules = self.services.rules
        member = interaction.user
        roles = {role.id for role in getattr(member, "roles", ())}
        guild_id = interaction.guild_id
        manage_guild = guild_id is not None and interaction.permissions.manage_guild
        if not rules.is_admin(member.id, roles, guild_id=guild_id, manage_guild=manage_guild):
            raise NotAdmin(rules.admin_refusal(guild_id, manage_guild=manage_guild))
        return True

    async def _reply(self, interaction: discord.Interaction, text: str) -> None:
        await reply_private(interaction, text)

    @quota.command(name="set", description="Set a user's own image limit")
    @app_commands.describe(user="Whose quota", images="Images allowed per period", period="Period")
    async def quota_set(
        self,
        interaction: discord.Interaction,
        user: discord.User,
        images: app_commands.Range[int, 0, MAX_IMAGES],
        period: Period,
    ) -> None:
        """Give ``user`` their own limit of ``images`` per ``period``."""
        await defer_private(interaction)
        status = await self.services.quotas.set_limit(
            user.id, images, period, actor=_actor(interaction)
        )
        await self._reply(interaction, "\n".join([f"{user.mention}:", *quota_lines(status)]))

    @quota.command(name="show", description="Show a user's quota and usage")
    async def quota_show(self, interaction: discord.Interaction, user: discord.User) -> None:
        """Limit, period, used, left, running and queued jobs, lifetime images."""
        await defer_private(interaction)
        status = await self.services.quotas.status(user.id)
        await self._reply(interaction, "\n".join([f"{user.mention}:", *quota_lines(status)]))

    @quota.command(name="reset", description="Clear a user's usage in the current period")
    async def quota_reset(self, interaction: discord.Interaction, user: discord.User) -> None:
        """Usage back to zero (recorded in the ledger)."""
        await defer_private(interaction)
        status = await self.services.quotas.reset(user.id, actor=_actor(interaction))
        await self._reply(interaction, "\n".join([f"{user.mention}:", *quota_lines(status)]))

    @admin.command(name="limits", description="Job caps: for one user, or server-wide")
    @app_commands.describe(
        user="Whose caps (leave out for the server-wide defaults)",
        max_concurrent="Jobs that may run at once",
        max_queued="Jobs that may wait in the queue",
    )
    async def limits(
        self,
        interaction: discord.Interaction,
        user: discord.User | None = None,
        max_concurrent: app_commands.Range[int, 1, MAX_CONCURRENT] | None = None,
        max_queued: app_commands.Range[int, 1, MAX_QUEUED] | None = None,
    ) -> None:
        """Change caps; with neither cap given, show them."""
        await defer_private(interaction)
        quotas = self.services.quotas
        change = max_concurrent is not None or max_queued is not None
        if user is None:
            if change:
                limits = await quotas.set_server_limits(
                    max_concurrent=max_concurrent,
                    max_queued=max_queued,
                    actor=_actor(interaction),
                )
            else:
                limits = await quotas.server_limits()
            await self._reply(
                interaction,
                f"Server defaults: {limits.images} images per {limits.period}, "
                f"{limits.max_concurrent} running at once, {limits.max_queued} queued",
            )
            return
        if change:
            status = await quotas.set_caps(
                user.id,
                max_concurrent=max_concurrent,
                max_queued=max_queued,
                actor=_actor(interaction),
            )
        else:
            status = await quotas.status(user.id)
        caps = f"Caps: {status.max_concurrent} running at once, {status.max_queued} queued"
        await self._reply(interaction, "\n".join([f"{user.mention}:", caps, *quota_lines(status)]))

    @admin.command(name="ban", description="Stop a user from making images")
    async def ban(self, interaction: discord.Interaction, user: discord.User) -> None:
        """Banned users are refused at enqueue."""
        await defer_private(interaction)
        await self.services.users.ban(user.id, actor=_actor(interaction))
        await self._reply(interaction, f"{user.mention} is banned from making images.")

    @admin.command(name="unban", description="Let a banned user make images again")
    async def unban(self, interaction: discord.Interaction, user: discord.User) -> None:
        """Lift a ban."""
        await defer_private(interaction)
        await self.services.users.unban(user.id, actor=_actor(interaction))
        await self._reply(interaction, f"{user.mention} may make images again.")

    @admin.command(name="queue", description="Queue depth, workers and running jobs")
    async def queue(self, interaction: discord.Interaction) -> None:
        """What the service is doing now."""
        await defer_private(interaction)
        queue = self.services.queue
        stats = await queue.stats()
        running = await queue.running_jobs()
        waiting = await queue.waiting()
        text = queue_content(stats, running, queue.now(), queue.lease, waiting)
        await self._reply(interaction, text)

    @admin.command(name="workers", description="Workers, what they serve and what they do")
    async def workers(self, interaction: discord.Interaction) -> None:
        """Each worker with what it serves, its current job and when it was last seen."""
        await defer_private(interaction)
        queue = self.services.queue
        stats = await queue.stats()
        running = await queue.running_jobs()
        text = workers_content(stats.workers, running, queue.now(), queue.lease)
        await self._reply(interaction, text)

    @admin.command(name="dashboard", description="A private one-time login link to the dashboard")
    async def dashboard(self, interaction: discord.Interaction) -> None:
        """Send the caller a signed login link, privately."""
        await defer_private(interaction)
        if self.bot.web is None:
            raise UserFacingError(
                "The web dashboard is off: set web_port (and public_url) in the bot's settings."
            )
        minutes = int(LINK_LIFETIME.total_seconds() // 60)
        link = login_link(self.bot.web, interaction.user.id)
        await self._reply(
            interaction,
            f"Your dashboard login link (works once, for {minutes} minutes; do not share it): "
            f"<{link}>",
        )

    @words.command(name="add", description="Refuse prompts containing a word")
    async def words_add(self, interaction: discord.Interaction, word: str) -> None:
        """Add a banned word."""
        await defer_private(interaction)
        if not word.strip():
            raise UserFacingError("Give a word or phrase to ban.")
        added = await self.services.users.add_banned_word(word.strip(), actor=_actor(interaction))
        await self.services.banned.refresh()
        if added:
            await self._reply(interaction, f"Prompts containing “{word.strip()}” are now refused.")
        else:
            await self._reply(interaction, f"“{word.strip()}” was already banned.")

    @words.command(name="remove", description="Allow a banned word again")
    async def words_remove(self, interaction: discord.Interaction, word: str) -> None:
        """Remove a banned word."""
        await defer_private(interaction)
        removed = await self.services.users.remove_banned_word(
            word.strip(), actor=_actor(interaction)
        )
        await self.services.banned.refresh()
        if not removed:
            raise UserFacingError(f"“{word.strip()}” is not on the banned list.")
        await self._reply(interaction, f"“{word.strip()}” is allowed again.")

    @words.command(name="list", description="List the banned words")
    async def words_list(self, interaction: discord.Interaction) -> None:
        """Every banned word."""
        await defer_private(interaction)
        await self.services.banned.refresh()
        words = self.services.banned.words
        text = "Banned words: " + ", ".join(words) if words else "No words are banned."
        await self._reply(interaction, text)


async def setup(bot: ImagineBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Admin(bot))
