"""The guilds the fake hosts: roles with permission bitfields, members, channels."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
ATTACH_FILES = 1 << 15
ALL_PERMISSIONS = (1 << 53) - 1
# What @everyone gets in a fresh guild: read, write, attach, embed, react, use commands.
DEFAULT_EVERYONE_PERMISSIONS = 311455763521


def utcnow() -> datetime.datetime:
    """The current time, timezone-aware."""
    return datetime.datetime.now(datetime.UTC)


def iso(moment: datetime.datetime | None) -> str | None:
    """A timestamp as Discord writes it (ISO 8601)."""
    return None if moment is None else moment.isoformat()


@dataclass(eq=False)
class Role:
    """A guild role with a permission bitfield."""

    id: int
    name: str
    permissions: int = 0
    position: int = 0

    def payload(self) -> dict[str, Any]:
        """The role object."""
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }


@dataclass(eq=False)
class User:
    """A Discord user; a member of one or more of the fake's guilds.

    ``roles`` holds the user's roles in every guild; each guild counts only its own.
    """

    id: int
    name: str
    bot: bool = False
    roles: list[Role] = field(default_factory=list)
    joined_at: datetime.datetime = field(default_factory=utcnow)
    locale: str = "en-US"

    @property
    def mention(self) -> str:
        """``<@id>``, as the bot writes it into messages."""
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        """The user object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.name,
            "avatar": None,
            "public_flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data

    def member_payload(
        self, *, with_user: bool = True, roles: Sequence[Role] | None = None
    ) -> dict[str, Any]:
        """The guild member object (optionally without the nested user), with ``roles``
        (default: all the user's roles; a guild passes its own)."""
        data: dict[str, Any] = {
            "nick": None,
            "avatar": None,
            "roles": [str(role.id) for role in (self.roles if roles is None else roles)],
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
        }
        if with_user:
            data["user"] = self.payload()
        return data


@dataclass
class Overwrite:
    """A channel permission overwrite for a role (type 0) or a member (type 1)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict[str, Any]:
        """The overwrite object."""
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(self.allow),
            "deny": str(self.deny),
        }


@dataclass(eq=False)
class Channel:
    """A guild text channel."""

    id: int
    guild_id: int
    name: str
    position: int = 0
    overwrites: list[Overwrite] = field(default_factory=list)

    @property
    def mention(self) -> str:
        """``<#id>``."""
        return f"<#{self.id}>"

    def payload(self) -> dict[str, Any]:
        """The channel object."""
        return {
            "id": str(self.id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [o.payload() for o in self.overwrites],
            "nsfw": False,
            "topic": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "last_message_id": None,
            "flags": 0,
        }


@dataclass(eq=False)
class Guild:
    """A guild the fake hosts, with its channels, roles and members."""

    id: int
    name: str
    owner: User
    everyone: Role
    roles: list[Role] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    members: list[User] = field(default_factory=list)

    def roles_of(self, user: User) -> list[Role]:
        """The user's roles in this guild."""
        return [role for role in user.roles if any(role is mine for mine in self.roles)]

    def has(self, user: User) -> bool:
        """Whether the user is a member."""
        return any(member is user for member in self.members)

    def permissions_of(self, user: User) -> int:
        """Guild-level permissions of a member (owner and administrators get all)."""
        if user.id == self.owner.id:
            return ALL_PERMISSIONS
        value = self.everyone.permissions
        for role in self.roles_of(user):
            value |= role.permissions
        if value & ADMINISTRATOR:
            return ALL_PERMISSIONS
        return value

    def permissions_in(self, user: User, channel: Channel) -> int:
        """A member's permissions in a channel: guild permissions, then the channel's
        overwrites for @everyone, the member's roles and the member, as Discord applies them."""
        value = self.permissions_of(user)
        if value == ALL_PERMISSIONS:
            return value
        by_id = {(o.type, o.id): o for o in channel.overwrites}
        everyone = by_id.get((0, self.everyone.id))
        if everyone is not None:
            value = (value & ~everyone.deny) | everyone.allow
        roles = [by_id[(0, role.id)] for role in user.roles if (0, role.id) in by_id]
        deny = allow = 0
        for overwrite in roles:
            deny |= overwrite.deny
            allow |= overwrite.allow
        value = (value & ~deny) | allow
        member = by_id.get((1, user.id))
        if member is not None:
            value = (value & ~member.deny) | member.allow
        return value

    def payload(self) -> dict[str, Any]:
        """The GUILD_CREATE / GET guild object."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "system_channel_id": str(self.channels[0].id) if self.channels else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [self.everyone.payload()] + [role.payload() for role in self.roles],
            "max_members": 500000,
        }
