"""``FakeDiscord``: guilds, REST + gateway on 127.0.0.1, an injection API and recorded state."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from . import _rest
from ._gateway import RECONNECT, Gateway
from ._inject import Injector
from ._messages import (
    SETTABLE_FLAGS,
    ApiError,
    Body,
    guess_type,
    image_size,
    is_empty,
    notified,
    validate_message,
)
from .models import (
    DEFAULT_EVERYONE_PERMISSIONS,
    DISCORD_EPOCH_MS,
    MANAGE_GUILD,
    Attachment,
    Channel,
    Command,
    FaultRule,
    Guild,
    Interaction,
    Message,
    Overwrite,
    Pings,
    RateLimitRule,
    Request,
    Role,
    User,
    iso,
    utcnow,
)

T = TypeVar("T")

# The bot's role: what a freshly invited bot with a typical invite link may do.
BOT_PERMISSIONS = DEFAULT_EVERYONE_PERMISSIONS | (1 << 13)  # + manage messages
MENTION = re.compile(r"<@!?(\d+)>")


class FakeDiscordTimeout(AssertionError):
    """A ``wait_for`` condition did not become true in time."""


class FakeDiscord(Injector):
    """A Discord API + gateway double that the real discord.py client talks to over sockets."""

    def __init__(
        self,
        *,
        token: str | None = None,
        ack_deadline: float = 3.0,
        heartbeat_interval_ms: int = 41250,
        attachment_size_limit: int = 10 * 1024 * 1024,
    ) -> None:
        self.token = token or f"fake.{secrets.token_urlsafe(24)}"
        self.ack_deadline = ack_deadline
        self.attachment_size_limit = attachment_size_limit
        self._ids = itertools.count(1)
        self.bot_user = User(id=self.snowflake(), name="imagine", bot=True)
        self.application_id = self.bot_user.id
        owner = User(id=self.snowflake(), name="owner")
        guild_id = self.snowflake()
        self.guild = Guild(
            id=guild_id,
            name="Test Guild",
            owner=owner,
            everyone=Role(id=guild_id, name="@everyone", permissions=DEFAULT_EVERYONE_PERMISSIONS),
        )
        # The first guild is the default everywhere a guild is not named.
        self.guilds: list[Guild] = [self.guild]
        # Guilds the bot left (DELETE /users/@me/guilds/{id}), in order.
        self.left_guilds: list[Guild] = []
        self.bot_role = self.add_role("imagine", permissions=BOT_PERMISSIONS, position=1)
        self.bot_user.roles.append(self.bot_role)
        self.guild.members += [owner, self.bot_user]
        self.channel = self.add_channel("general")
        self.owner = owner

        self.messages: dict[int, Message] = {}
        self.interactions: list[Interaction] = []
        self.requests: list[Request] = []
        self.commands: dict[tuple[int | None, str, int], Command] = {}
        self.rate_limits: list[RateLimitRule] = []
        self.faults: list[FaultRule] = []
        # Files users attached to commands: not in any message, still downloadable.
        self._uploads: dict[int, Attachment] = {}
        self.server_errors: list[Exception] = []
        self.gateway = Gateway(self, heartbeat_interval_ms)
        self._condition: asyncio.Condition | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be set to."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be set to (also from /gateway/bot)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        """Sent in READY; discord.py resumes here."""
        return f"ws://127.0.0.1:{self.port}/gateway-resume"

    def environ(self) -> dict[str, str]:
        """``IMAGINE_*`` variables pointing a bot (in-process or a subprocess) at this fake."""
        return {
            "IMAGINE_DISCORD_TOKEN": self.token,
            "IMAGINE_DISCORD_API_BASE": self.api_base,
            "IMAGINE_DISCORD_GATEWAY_URL": self.gateway_url,
            "IMAGINE_GUILD_IDS": f"[{self.guild.id}]",
        }

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 (a free port by default)."""
        self._condition = asyncio.Condition()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        _rest.install(app, self)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Close every socket and stop listening."""
        await self.gateway.close_all(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- guild setup ----------------------------------------------------------------------

    def snowflake(self) -> int:
        """A new, increasing Discord id."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._ids) & 0x3FFFFF)

    def add_role(
        self, name: str, *, permissions: int = 0, position: int = 1, guild: Guild | None = None
    ) -> Role:
        """Create a role in ``guild`` (default: the first guild)."""
        role = Role(id=self.snowflake(), name=name, permissions=permissions, position=position)
        (guild or self.guild).roles.append(role)
        return role

    def add_channel(self, name: str, *, guild: Guild | None = None) -> Channel:
        """Create a text channel in ``guild`` (default: the first guild)."""
        guild = guild or self.guild
        channel = Channel(
            id=self.snowflake(),
            guild_id=guild.id,
            name=name,
            position=len(guild.channels),
        )
        guild.channels.append(channel)
        return channel

    def set_permissions(
        self, channel: Channel, target: User | Role, *, allow: int = 0, deny: int = 0
    ) -> None:
        """Give ``channel`` a permission overwrite for a role or a member (replacing theirs)."""
        kind = 0 if isinstance(target, Role) else 1
        channel.overwrites = [
            o for o in channel.overwrites if (o.type, o.id) != (kind, target.id)
        ] + [Overwrite(id=target.id, type=kind, allow=allow, deny=deny)]

    async def delete_channel(self, channel: Channel) -> None:
        """Delete a channel: REST answers 404 Unknown Channel; the bot gets CHANNEL_DELETE."""
        self.guild.channels.remove(channel)
        await self.gateway.dispatch("CHANNEL_DELETE", channel.payload())

    def add_user(
        self,
        name: str,
        *,
        manage_guild: bool = False,
        roles: Iterable[Role] = (),
        locale: str = "en-US",
        guild: Guild | None = None,
    ) -> User:
        """Create a member of ``guild`` (default: the first); ``manage_guild=True`` gives them a
        role with Manage Server there."""
        user = User(id=self.snowflake(), name=name, locale=locale)
        self.add_member(user, guild or self.guild, manage_guild=manage_guild, roles=roles)
        return user

    def add_member(
        self,
        user: User,
        guild: Guild,
        *,
        manage_guild: bool = False,
        roles: Iterable[Role] = (),
    ) -> User:
        """Make an existing user a member of another guild too (with roles of that guild)."""
        user.roles += list(roles)
        if manage_guild:
            name = f"{user.name}-managers"
            user.roles.append(self.add_role(name, permissions=MANAGE_GUILD, guild=guild))
        if not guild.has(user):
            guild.members.append(user)
        return user

    def add_guild(self, name: str, *, owner: User | None = None, with_bot: bool = True) -> Guild:
        """Host another guild with its owner, an @everyone role and a ``general`` channel.

        With ``with_bot`` the bot is already a member (it gets the guild in READY); without it,
        ``invite_bot`` adds the bot later, as an invitation does.
        """
        guild_id = self.snowflake()
        owner = owner or User(id=self.snowflake(), name=f"{name} owner")
        guild = Guild(
            id=guild_id,
            name=name,
            owner=owner,
            everyone=Role(id=guild_id, name="@everyone", permissions=DEFAULT_EVERYONE_PERMISSIONS),
        )
        self.guilds.append(guild)
        guild.members.append(owner)
        self.add_channel("general", guild=guild)
        if with_bot:
            self._join(guild)
        return guild

    def _join(self, guild: Guild) -> None:
        role = self.add_role("imagine", permissions=BOT_PERMISSIONS, position=1, guild=guild)
        self.add_member(self.bot_user, guild, roles=[role])

    async def invite_bot(self, guild: Guild) -> None:
        """The bot is invited to ``guild``: it becomes a member and gets GUILD_CREATE."""
        if guild.has(self.bot_user):
            raise ValueError(f"the bot is already in {guild.name}")
        self._join(guild)
        data = self.guild_create_payload(guild)
        del data["unavailable"]  # a guild joined now, not one coming back online
        await self.gateway.dispatch("GUILD_CREATE", data)
        await self._notify()

    def bot_guilds(self) -> list[Guild]:
        """The guilds the bot is a member of."""
        return [guild for guild in self.guilds if guild.has(self.bot_user)]

    def guild_by_id(self, guild_id: int) -> Guild | None:
        """A hosted guild by id."""
        return next((g for g in self.guilds if g.id == guild_id), None)

    def guild_of(self, channel: Channel) -> Guild:
        """The guild a channel belongs to."""
        guild = self.guild_by_id(channel.guild_id)
        assert guild is not None, f"channel {channel.id} belongs to no hosted guild"
        return guild

    def user(self, user_id: int) -> User | None:
        """A member of any guild, by id."""
        for guild in self.guilds:
            for member in guild.members:
                if member.id == user_id:
                    return member
        return None

    def channel_by_id(self, channel_id: int) -> Channel | None:
        """A channel of any guild, by id."""
        return next(
            (c for guild in self.guilds for c in guild.channels if c.id == channel_id), None
        )

    def member_payload(
        self, user: User, *, permissions: bool = False, guild: Guild | None = None
    ) -> dict[str, Any]:
        """The member object in ``guild`` (default: the first); with the computed permissions
        string as interactions carry it."""
        guild = guild or self.guild
        data = user.member_payload(roles=guild.roles_of(user))
        if permissions:
            data["permissions"] = str(guild.permissions_of(user))
        return data

    def guild_create_payload(self, guild: Guild | None = None) -> dict[str, Any]:
        """GUILD_CREATE: the guild (default: the first) with channels, roles and every member."""
        guild = guild or self.guild
        data = guild.payload()
        data.update(
            unavailable=False,
            large=False,
            joined_at=iso(self.bot_user.joined_at),
            member_count=len(guild.members),
            members=[self.member_payload(m, guild=guild) for m in guild.members],
            channels=[c.payload() for c in guild.channels],
            threads=[],
            presences=[],
            voice_states=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return data

    # -- messages -------------------------------------------------------------------------

    def message_payload(self, message: Message) -> dict[str, Any]:
        """The message object as REST and the gateway return it."""
        mentioned = {int(m) for m in MENTION.findall(message.content)}
        data: dict[str, Any] = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "guild_id": str(message.guild_id),
            "author": message.author.payload(),
            "content": message.content,
            "timestamp": iso(message.created_at),
            "edited_timestamp": iso(message.edited_at),
            "tts": False,
            "mention_everyone": False,
            "mentions": [u.payload() for u in map(self.user, sorted(mentioned)) if u is not None],
            "mention_roles": [],
            "attachments": [a.payload() for a in message.attachments],
            "embeds": message.embeds,
            "components": message.components,
            "pinned": False,
            "type": message.type,
            "flags": message.flags,
        }
        if message.webhook_id is not None:
            data["webhook_id"] = str(message.webhook_id)
            data["application_id"] = str(self.application_id)
        interaction = message.interaction
        if interaction is not None:
            meta: dict[str, Any] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": interaction.user.payload(),
                "authorizing_integration_owners": {"0": str(message.guild_id)},
            }
            if interaction.name:
                meta["name"] = interaction.name
            if interaction.message is not None:
                meta["interacted_message_id"] = str(interaction.message.id)
            data["interaction_metadata"] = meta
        return data

    def upload(
        self, channel_id: int, filename: str, data: bytes, description: str | None = None
    ) -> Attachment:
        """Keep a file's bytes and serve them on an attachment URL of this server."""
        attachment_id = self.snowflake()
        content_type = guess_type(filename)
        size = image_size(data) if content_type.startswith("image/") else None
        return Attachment(
            id=attachment_id,
            filename=filename,
            data=data,
            content_type=content_type,
            url=f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{filename}",
            description=description,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )

    def attachment(self, channel_id: int, attachment_id: int) -> Attachment | None:
        """An attachment of any message (or interaction upload) by id."""
        for message in self.messages.values():
            for attachment in message.attachments:
                if attachment.id == attachment_id and message.channel_id == channel_id:
                    return attachment
        return self._uploads.get(attachment_id)

    def apply_body(self, message: Message, body: Body, *, creating: bool, via: str) -> None:
        """Apply a create or edit payload (content, embeds, components, files) to a message."""
        data = body.json if isinstance(body.json, dict) else {}
        validate_message(data)
        total = sum(len(blob) for _, blob in body.files)
        if total > self.attachment_size_limit:
            raise ApiError(413, 40005, f"Request entity too large ({total} bytes)")
        # Build the new state first: a rejected request must leave the message untouched.
        after = dataclasses.replace(message)
        if "content" in data:
            after.content = str(data["content"] or "")
        if "embeds" in data:
            after.embeds = list(data["embeds"] or [])
        if "components" in data:
            after.components = list(data["components"] or [])
        if creating and data.get("flags"):
            after.flags |= int(data["flags"]) & SETTABLE_FLAGS
        elif "flags" in data and data["flags"] is not None:
            # Edits may only toggle suppress-embeds; ephemeral and v2 stay as created.
            after.flags = (after.flags & ~(1 << 2)) | (int(data["flags"]) & (1 << 2))
        after.attachments = self._attachments(message, data, body.files)
        if is_empty(after):
            raise ApiError(400, 50006, "Cannot send an empty message")
        if creating:
            pings = notified(after.content, data.get("allowed_mentions"))
            # Only its user sees an ephemeral message: it notifies nobody.
            message.pings = Pings() if after.ephemeral else pings
        message.content, message.embeds = after.content, after.embeds
        message.components, message.flags = after.components, after.flags
        message.attachments = after.attachments
        if not creating:
            message.edited_at = utcnow()
        message.record(via)

    def _attachments(
        self, message: Message, data: dict[str, Any], files: Sequence[tuple[str, bytes]]
    ) -> list[Attachment]:
        if "attachments" not in data:
            return message.attachments + [
                self.upload(message.channel_id, name, blob) for name, blob in files
            ]
        existing = {a.id: a for a in message.attachments}
        kept: list[Attachment] = []
        for entry in data["attachments"] or []:
            ref = int(entry["id"])
            if ref in existing:
                kept.append(existing[ref])
            elif 0 <= ref < len(files):
                name, blob = files[ref]
                kept.append(
                    self.upload(
                        message.channel_id,
                        entry.get("filename") or name,
                        blob,
                        entry.get("description"),
                    )
                )
            else:
                raise ApiError(
                    400, 50035, f"Invalid Form Body: attachments: unknown attachment id {ref}"
                )
        return kept

    def new_message(self, channel_id: int, author: User, **fields: Any) -> Message:
        """An empty message record (filled by :meth:`apply_body`)."""
        channel = self.channel_by_id(channel_id)
        return Message(
            id=self.snowflake(),
            channel_id=channel_id,
            guild_id=channel.guild_id if channel is not None else self.guild.id,
            author=author,
            **fields,
        )

    def store(self, message: Message) -> Message:
        """Remember a message (public and ephemeral alike; REST hides ephemeral ones)."""
        self.messages[message.id] = message
        return message

    async def announce(self, event: str, message: Message) -> None:
        """Send MESSAGE_CREATE / _UPDATE / _DELETE for a change, as Discord does (not ephemeral)."""
        if message.ephemeral:
            return
        data: dict[str, Any]
        if event == "MESSAGE_DELETE":
            data = {
                "id": str(message.id),
                "channel_id": str(message.channel_id),
                "guild_id": str(message.guild_id),
            }
        else:
            data = self.message_payload(message)
            guild = self.guild_by_id(message.guild_id) or self.guild
            data["member"] = message.author.member_payload(
                with_user=False, roles=guild.roles_of(message.author)
            )
        await self.gateway.dispatch(event, data)

    async def _notify(self) -> None:
        if self._condition is None:
            return
        async with self._condition:
            self._condition.notify_all()

    # -- injection ------------------------------------------------------------------------

    # Waiting helpers take ``timeout=`` (the documented test API) and use asyncio.wait_for.
    async def wait_until_connected(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until a bot has identified and received GUILD_CREATE on a live socket."""
        await self.wait_for(
            lambda: any(s.ready and s.connection for s in self.gateway.live_sessions),
            timeout=timeout,
            what="a bot to connect to the gateway",
        )

    # -- gateway control ------------------------------------------------------------------

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close the bot's websocket (it should RESUME on ``resume_gateway_url``)."""
        await self.gateway.close_all(code=code)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT to every connected session."""
        for session in self.gateway.live_sessions:
            if session.connection is not None:
                await session.connection.send({"op": RECONNECT, "d": None})

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send any gateway event (e.g. MESSAGE_CREATE) to the bot."""
        await self.gateway.dispatch(event, data)

    def rate_limit(
        self,
        method: str,
        path: str,
        *,
        times: int = 1,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> RateLimitRule:
        """Answer the next ``times`` requests to ``path`` (a route template like
        ``/channels/{channel_id}/messages/{message_id}`` or a concrete path) with 429."""
        rule = RateLimitRule(method.upper(), path, times, retry_after, is_global)
        self.rate_limits.append(rule)
        return rule

    def fail(
        self,
        method: str,
        path: str,
        *,
        status: int,
        code: int,
        message: str,
        times: int = 1,
        uploads_only: bool = False,
    ) -> FaultRule:
        """Answer the next ``times`` requests to ``path`` (a route template or a concrete path)
        with an error in Discord's shape, e.g. ``status=403, code=50013``; with
        ``uploads_only``, only the requests among them that upload files."""
        rule = FaultRule(
            method.upper(), path, times, status, code, message, uploads_only=uploads_only
        )
        self.faults.append(rule)
        return rule

    # -- assertions and waiting -----------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[], T | None],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        what: str | None = None,
    ) -> T:
        """Wait until ``predicate()`` is truthy, re-checked on every request and event."""
        assert self._condition is not None, "start() the fake first"
        result: list[T] = []

        def check() -> bool:
            value = predicate()
            if value:
                result.append(value)
                return True
            return False

        async with self._condition:
            try:
                await asyncio.wait_for(self._condition.wait_for(check), timeout)
            except TimeoutError:
                recent = [f"{r.method} {r.route} -> {r.status}" for r in self.requests[-8:]]
                raise FakeDiscordTimeout(
                    f"timed out after {timeout}s waiting for {what or repr(predicate)}; "
                    f"last requests: {recent}"
                ) from None
        return result[0]

    async def wait_for_message(
        self,
        predicate: Callable[[Message], Any],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        channel: Channel | None = None,
    ) -> Message:
        """The first (newest last) live message for which ``predicate`` is truthy."""

        def find() -> Message | None:
            for message in self.messages.values():
                if message.deleted or (channel and message.channel_id != channel.id):
                    continue
                if predicate(message):
                    return message
            return None

        return await self.wait_for(find, timeout=timeout, what="a matching message")

    def channel_messages(self, channel: Channel | None = None) -> list[Message]:
        """Public, undeleted messages of a channel, oldest first."""
        channel_id = (channel or self.channel).id
        return [
            m
            for m in self.messages.values()
            if m.channel_id == channel_id and not m.deleted and not m.ephemeral
        ]

    def assert_all_acked(self) -> None:
        """Fail if any interaction whose deadline has passed was never acknowledged in time.

        Interactions still inside their deadline are not judged; ``wait_all_acked`` waits.
        """
        now = asyncio.get_running_loop().time()
        missing = [
            f"{i.name or i.custom_id!r} ({i.id})"
            for i in self.interactions
            if i.response is None and now >= i.deadline
        ]
        if missing:
            raise AssertionError(f"never acknowledged within {self.ack_deadline}s: {missing}")

    async def wait_all_acked(self) -> None:
        """Wait out every pending deadline, then fail if any interaction went unacknowledged."""
        missing: list[str] = []
        for interaction in self.interactions:
            try:
                await interaction.wait_acked()
            except AssertionError:
                missing.append(f"{interaction.name or interaction.custom_id!r} ({interaction.id})")
        if missing:
            raise AssertionError(f"never acknowledged within {self.ack_deadline}s: {missing}")

    def synced_commands(self, *, guild: bool | None = None) -> list[Command]:
        """Commands as last synced (``guild=True`` only guild ones, ``False`` only global)."""
        return [
            c for c in self.commands.values() if guild is None or (c.guild_id is not None) == guild
        ]

    def unhandled_requests(self) -> list[Request]:
        """Requests to endpoints the fake does not implement (the bot used something new)."""
        return [r for r in self.requests if r.route == "unknown"]


__all__ = ["FakeDiscord", "FakeDiscordTimeout"]
