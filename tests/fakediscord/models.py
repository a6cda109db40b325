"""Records of what happened: messages with history, interactions and responses, commands, requests.

The guild objects live in ``guild.py`` and components in ``components.py``; both are
re-exported here so tests import every record from one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from dataclasses import dataclass, field
from typing import Any

from .components import Button, SelectMenu, emoji_text, walk_components
from .guild import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    ATTACH_FILES,
    DEFAULT_EVERYONE_PERMISSIONS,
    MANAGE_GUILD,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Channel,
    Guild,
    Overwrite,
    Role,
    User,
    iso,
    utcnow,
)

EPHEMERAL = 1 << 6
LOADING = 1 << 7
COMPONENTS_V2 = 1 << 15

DISCORD_EPOCH_MS = 1420070400000


@dataclass(frozen=True)
class Revision:
    """One state of a message: as created, then after each edit."""

    at: datetime.datetime
    content: str
    embeds: list[dict[str, Any]]
    components: list[dict[str, Any]]
    attachments: list[Attachment]
    flags: int
    via: str


@dataclass(eq=False)
class Attachment:
    """An uploaded file: its bytes are kept and served on :attr:`url`."""

    id: int
    filename: str
    data: bytes
    content_type: str
    url: str
    description: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def size(self) -> int:
        """Length in bytes."""
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        """The attachment object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
            "flags": 0,
        }
        if self.description is not None:
            data["description"] = self.description
        if self.width is not None and self.height is not None:
            data["width"] = self.width
            data["height"] = self.height
        return data


@dataclass(frozen=True)
class Pings:
    """Who a new message notified: mentions in its content that its ``allowed_mentions`` let
    through (without ``allowed_mentions``, every mention notifies)."""

    users: tuple[int, ...] = ()
    roles: tuple[int, ...] = ()
    everyone: bool = False


@dataclass(eq=False)
class Message:
    """A message in a channel (or an ephemeral interaction response) with its edit history."""

    id: int
    channel_id: int
    guild_id: int
    author: User
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    created_at: datetime.datetime = field(default_factory=utcnow)
    edited_at: datetime.datetime | None = None
    webhook_id: int | None = None
    interaction: Interaction | None = None
    deleted: bool = False
    history: list[Revision] = field(default_factory=list)
    # Set when the message is created; edits never notify anyone.
    pings: Pings = field(default_factory=Pings)

    @property
    def ephemeral(self) -> bool:
        """Only the invoking user sees it."""
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A deferred response still showing "thinking"."""
        return bool(self.flags & LOADING)

    @property
    def edits(self) -> list[Revision]:
        """Every revision after the first."""
        return self.history[1:]

    @property
    def buttons(self) -> list[Button]:
        """All buttons, row by row."""
        return [
            Button(
                custom_id=node.get("custom_id"),
                label=node.get("label"),
                style=int(node.get("style", 1)),
                emoji=emoji_text(node.get("emoji")),
                disabled=bool(node.get("disabled", False)),
                url=node.get("url"),
                row=row,
            )
            for row, node in walk_components(self.components)
            if node.get("type") == 2
        ]

    @property
    def rows(self) -> list[list[Button | SelectMenu]]:
        """Interactive components grouped by their top-level row."""
        rows: list[list[Button | SelectMenu]] = [[] for _ in self.components]
        items: list[Button | SelectMenu] = [*self.buttons, *self.selects]
        for item in items:
            rows[item.row].append(item)
        return rows

    @property
    def selects(self) -> list[SelectMenu]:
        """All select menus."""
        return [
            SelectMenu(
                custom_id=str(node["custom_id"]),
                type=int(node["type"]),
                options=list(node.get("options", [])),
                placeholder=node.get("placeholder"),
                min_values=int(node.get("min_values", 1)),
                max_values=int(node.get("max_values", 1)),
                disabled=bool(node.get("disabled", False)),
                row=row,
            )
            for row, node in walk_components(self.components)
            if node.get("type") in (3, 5, 6, 7, 8)
        ]

    def button(self, label_or_id: str) -> Button:
        """The button whose label, emoji or custom_id is ``label_or_id``."""
        for candidate in self.buttons:
            if label_or_id in (candidate.label, candidate.custom_id, candidate.emoji):
                return candidate
        shown = [b.label or b.emoji or b.custom_id for b in self.buttons]
        raise KeyError(f"message {self.id} has no button {label_or_id!r}; it has {shown}")

    def component(self, custom_id: str) -> dict[str, Any] | None:
        """The raw component payload with that custom_id."""
        for _, node in walk_components(self.components):
            if node.get("custom_id") == custom_id:
                return node
        return None

    def record(self, via: str) -> None:
        """Append the current state to the history."""
        self.history.append(
            Revision(
                at=utcnow(),
                content=self.content,
                embeds=list(self.embeds),
                components=list(self.components),
                attachments=list(self.attachments),
                flags=self.flags,
                via=via,
            )
        )


@dataclass(eq=False)
class Response:
    """The interaction callback the bot sent first."""

    type: int
    data: dict[str, Any]
    at: float

    @property
    def ephemeral(self) -> bool:
        """Flag 64 was set."""
        return bool(int(self.data.get("flags") or 0) & EPHEMERAL)

    @property
    def content(self) -> str | None:
        """The message content for types 4 and 7."""
        value = self.data.get("content")
        return None if value is None else str(value)


@dataclass(eq=False)
class Interaction:
    """An interaction the fake injected, and everything the bot did with it."""

    id: int
    token: str
    type: int
    user: User
    channel_id: int
    payload: dict[str, Any]
    created_at: float
    deadline: float
    name: str | None = None
    custom_id: str | None = None
    message: Message | None = None
    response: Response | None = None
    late_callbacks: list[float] = field(default_factory=list)
    original: Message | None = None
    followups: list[Message] = field(default_factory=list)
    modal: dict[str, Any] | None = None
    # The MODAL_SUBMIT interactions sent for ``modal`` (the client closes it once one is answered).
    submits: list[Interaction] = field(default_factory=list)
    token_expired: bool = False
    _acked: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def ack_latency(self) -> float | None:
        """Seconds from dispatch to the first accepted callback (None if never acked)."""
        return None if self.response is None else self.response.at - self.created_at

    @property
    def acked_in_time(self) -> bool:
        """The first callback arrived before the 3 s deadline."""
        return self.response is not None

    @property
    def ephemeral(self) -> bool:
        """The initial response was ephemeral."""
        return self.response is not None and self.response.ephemeral

    def expire_token(self) -> None:
        """Make the 15-minute interaction token invalid now (webhook calls get 401)."""
        self.token_expired = True

    # The timeout parameter is the API tests want; it is applied with asyncio.wait_for.
    async def wait_acked(self, timeout: float | None = None) -> Response:  # noqa: ASYNC109
        """Wait for the callback; fail if none arrived before the ack deadline."""
        loop = asyncio.get_running_loop()
        remaining = self.deadline - loop.time() if timeout is None else timeout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._acked.wait(), max(remaining, 0.0))
        if self.response is None:
            late = f" (late callbacks after {self.late_callbacks})" if self.late_callbacks else ""
            raise AssertionError(
                f"interaction {self.name or self.custom_id!r} ({self.id}) was not acknowledged "
                f"within {self.deadline - self.created_at:.1f}s{late}"
            )
        return self.response


@dataclass(eq=False)
class Command:
    """An application command as the bot synced it."""

    id: int
    guild_id: int | None
    definition: dict[str, Any]

    @property
    def name(self) -> str:
        """The command name."""
        return str(self.definition["name"])

    @property
    def type(self) -> int:
        """1 slash, 2 user, 3 message."""
        return int(self.definition.get("type", 1))

    def payload(self, application_id: int) -> dict[str, Any]:
        """The application command object Discord returns."""
        data = dict(self.definition)
        data.setdefault("type", 1)
        data.setdefault("description", "")
        data.setdefault("options", [])
        data.setdefault("default_member_permissions", None)
        data.setdefault("nsfw", False)
        if data["default_member_permissions"] is not None:
            data["default_member_permissions"] = str(data["default_member_permissions"])
        data["id"] = str(self.id)
        data["application_id"] = str(application_id)
        data["version"] = str(self.id)
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        else:
            data.setdefault("contexts", None)
            data.setdefault("integration_types", [0])
        return data


@dataclass(frozen=True)
class Request:
    """One REST request the fake received."""

    method: str
    path: str
    route: str
    status: int
    json: Any
    files: list[tuple[str, bytes]]
    query: dict[str, str]
    at: float


@dataclass(eq=False)
class RateLimitRule:
    """Answer ``times`` matching requests with 429 and ``retry_after``."""

    method: str
    path: str
    times: int
    retry_after: float
    is_global: bool = False
    hits: int = 0


@dataclass
class FaultRule:
    """Answer ``times`` matching requests with an error in Discord's shape."""

    method: str
    path: str
    times: int
    status: int
    code: int
    message: str
    hits: int = 0
    # Only requests that upload files (multipart bodies), e.g. a result, not a progress edit.
    uploads_only: bool = False

    def matches(self, method: str, paths: tuple[str, str], content_type: str) -> bool:
        return (
            self.method == method
            and self.path in paths
            and self.hits < self.times
            and (not self.uploads_only or content_type.startswith("multipart/"))
        )


__all__ = [
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "ATTACH_FILES",
    "COMPONENTS_V2",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "DISCORD_EPOCH_MS",
    "EPHEMERAL",
    "LOADING",
    "MANAGE_GUILD",
    "SEND_MESSAGES",
    "VIEW_CHANNEL",
    "Attachment",
    "Button",
    "Channel",
    "Command",
    "FaultRule",
    "Guild",
    "Interaction",
    "Message",
    "Overwrite",
    "Pings",
    "RateLimitRule",
    "Request",
    "Response",
    "Revision",
    "Role",
    "SelectMenu",
    "User",
    "iso",
    "utcnow",
]
