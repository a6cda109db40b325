"""What the bot's cogs and loops are given: settings, storage handles and small caches."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.config import BotSettings
from bot.gates import PostGate
from bot.messages import MessageSlots
from bot.moderation import find_banned, find_banned_in
from bot.permissions import GuildRules
from bot.prompt import ParserOptions
from storage.posts import SinglePosts

if TYPE_CHECKING:
    from storage.contract import GenerationRequest
    from storage.db import Database
    from storage.images import ImageStore
    from storage.metrics import Metrics
    from storage.queue import JobQueue
    from storage.quotas import Quotas
    from storage.users import Users


class BannedWords:
    """The banned-word list, held in memory so /imagine can check it before acknowledging.

    Admin commands update it at once; ``refresh`` reloads it from the database (at start-up and
    periodically, so a change made by another bot process arrives too).
    """

    def __init__(self, users: Users) -> None:
        self._users = users
        self._words: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        """The current list."""
        return self._words

    async def refresh(self) -> None:
        """Reload from the database."""
        self._words = tuple(await self._users.banned_words())

    def find(self, text: str) -> str | None:
        """The first banned word in ``text``, or ``None``."""
        return find_banned(text, self._words) if self._words else None

    def find_in_command(self, text: str, requests: Iterable[GenerationRequest]) -> str | None:
        """The first banned word in a command's text or in any request it expands to.

        Each request's prompt, every one of its segments and its negative prompt are checked:
        permutations put words together that the typed text keeps apart (``a {ca}t``).
        """
        if not self._words:
            return None
        texts = [text]
        for request in requests:
            texts += [request.prompt, *(segment for segment, _ in request.segments)]
            if request.negative_prompt:
                texts.append(request.negative_prompt)
        return find_banned_in(texts, self._words)


@dataclass
class Services:
    """Dependencies shared by the bot's extensions and loops."""

    settings: BotSettings
    db: Database
    queue: JobQueue
    quotas: Quotas
    users: Users
    images: ImageStore
    metrics: Metrics | None = None
    banned: BannedWords = field(init=False)
    # U buttons: the recorded public posts, and the in-process cooldown and one-at-a-time gate.
    posts: SinglePosts = field(init=False)
    posts_gate: PostGate = field(init=False)
    rules: GuildRules = field(init=False)
    messages: MessageSlots = field(default_factory=MessageSlots)
    # Wakes the delivery loop early (this process posted a message a finished job waits for).
    delivery_wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.banned = BannedWords(self.users)
        self.posts = SinglePosts(self.db)
        self.posts_gate = PostGate(self.settings.u_cooldown_seconds)
        self.rules = GuildRules.from_settings(self.settings)

    @property
    def parser(self) -> ParserOptions:
        """What the prompt parser is configured with."""
        return self.settings.parser


def services_of(client: object) -> Services:
    """The ``Services`` of the bot that received an interaction."""
    services = getattr(client, "services", None)
    if not isinstance(services, Services):
        raise RuntimeError("this client was not built with imagine services")
    return services
