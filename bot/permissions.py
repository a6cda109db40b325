"""Who may use admin commands, and in which guilds the bot works: pure predicates on ids.

Quotas, bans, limits and banned words are global, so Manage Server in any guild cannot be
enough: anyone can invite the bot to a guild of their own. Manage Server counts only in the
home guilds (``admin_guild_ids``, else ``guild_ids``); elsewhere only the configured user and
role ids are admins. ``allowed_guild_ids``, when set, is the list of guilds the bot works in at
all; it refuses commands from any other guild and leaves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class _ConfigLike(Protocol):
    """The settings attributes ``GuildRules.from_settings`` reads."""

    @property
    def guild_ids(self) -> list[int]: ...
    @property
    def admin_guild_ids(self) -> list[int]: ...
    @property
    def admin_user_ids(self) -> list[int]: ...
    @property
    def admin_role_ids(self) -> list[int]: ...
    @property
    def allowed_guild_ids(self) -> list[int]: ...


@dataclass(frozen=True)
class GuildRules:
    """Admin rights and the guild allowlist, from the configuration."""

    admin_user_ids: frozenset[int] = frozenset()
    admin_role_ids: frozenset[int] = frozenset()
    # Where Manage Server makes a member an admin; empty: nowhere.
    home_guild_ids: frozenset[int] = frozenset()
    # The guilds the bot works in; empty: every guild.
    allowed_guild_ids: frozenset[int] = frozenset()

    @classmethod
    def from_settings(cls, settings: _ConfigLike) -> GuildRules:
        """``admin_guild_ids`` are the home guilds; without them, ``guild_ids`` are."""
        return cls(
            admin_user_ids=frozenset(settings.admin_user_ids),
            admin_role_ids=frozenset(settings.admin_role_ids),
            home_guild_ids=frozenset(settings.admin_guild_ids or settings.guild_ids),
            allowed_guild_ids=frozenset(settings.allowed_guild_ids),
        )

    def is_admin(
        self,
        user_id: int,
        role_ids: Iterable[int],
        *,
        guild_id: int | None,
        manage_guild: bool,
    ) -> bool:
        """Whether a member may run admin commands here.

        A listed user or role is an admin anywhere; Manage Server only in a home guild.
        """
        if user_id in self.admin_user_ids:
            return True
        if not self.admin_role_ids.isdisjoint(role_ids):
            return True
        return manage_guild and guild_id is not None and guild_id in self.home_guild_ids

    def allows_guild(self, guild_id: int | None) -> bool:
        """Whether the bot works in this guild (``None``: outside any guild)."""
        return not self.allowed_guild_ids or guild_id in self.allowed_guild_ids

    def guild_refusal(self, guild_id: int | None) -> str | None:
        """What to tell a user of a guild the bot does not work in; ``None`` when it does."""
        if self.allows_guild(guild_id):
            return None
        if guild_id is None:
            return "This bot works only in the servers it was set up for, not in direct messages."
        return (
            "This bot works only in the servers it was set up for, and this server is not one "
            "of them (allowed_guild_ids); it is leaving."
        )

    def admin_refusal(self, guild_id: int | None, *, manage_guild: bool) -> str:
        """Why a caller is not an admin, naming what would make them one."""
        if manage_guild and guild_id not in self.home_guild_ids:
            return (
                "Manage Server makes you an admin of this bot only in its home servers "
                "(admin_guild_ids, or guild_ids); here, only the users and roles in "
                "admin_user_ids / admin_role_ids may use /admin."
            )
        return (
            "Only server admins can use /admin (Manage Server in the bot's home servers, or "
            "listed in the bot's admin_user_ids / admin_role_ids)."
        )

    def has_admins(self) -> bool:
        """Whether anyone at all can become an admin under these rules."""
        return bool(self.admin_user_ids or self.admin_role_ids or self.home_guild_ids)
