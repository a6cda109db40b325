"""The dashboard's changes (POST): the same storage calls as ``/admin quota``, ``/admin limits``,
``/admin ban`` and ``/admin words``, recorded in the audit log with the signed-in admin's id.

Every form carries the session's CSRF token (checked before a handler runs); bad input gets the
page back with a message saying what was wrong and what is allowed, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from bot.services import Services
from bot.web.dashboard._auth import session_of
from bot.web.dashboard._pages import Pages
from storage.audit import Actor
from storage.errors import StorageError
from storage.limits import MAX_CONCURRENT, MAX_IMAGES, MAX_QUEUED
from storage.tables import PERIODS

Route = tuple[str, str, Callable[[web.Request], Any]]
Form = MultiDictProxy[Any]


class FormError(ValueError):
    """A form value that is missing or out of range; ``str()`` says which and what is allowed."""


def whole(form: Form, name: str, low: int, high: int, *, required: bool = True) -> int | None:
    """The form field ``name`` as a whole number from ``low`` to ``high`` (None when empty)."""
    text = str(form.get(name, "")).strip()
    if not text:
        if required:
            raise FormError(f"{name.replace('_', ' ')} is required (a whole number {low}-{high})")
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        raise FormError(
            f"{name.replace('_', ' ')} must be a whole number from {low} to {high}; got {text!r}"
        )
    return int(text)


def period(form: Form, *, required: bool = True) -> str | None:
    """The form's quota period."""
    text = str(form.get("period", "")).strip()
    if not text and not required:
        return None
    if text not in PERIODS:
        raise FormError(f"period must be one of {', '.join(PERIODS)}; got {text!r}")
    return text


class Edits:
    """Form handlers; each answers with the page it came from."""

    def __init__(self, services: Services, pages: Pages) -> None:
        self.services = services
        self.pages = pages

    def routes(self) -> list[Route]:
        """(method, path, handler) of every change."""
        user = "/admin/users/{user_id:[0-9]{1,20}}"
        return [
            ("POST", f"{user}/quota", self.set_quota),
            ("POST", f"{user}/caps", self.set_caps),
            ("POST", f"{user}/reset", self.reset),
            ("POST", f"{user}/clear", self.clear),
            ("POST", f"{user}/ban", self.ban),
            ("POST", f"{user}/unban", self.unban),
            ("POST", "/admin/limits", self.server_limits),
            ("POST", "/admin/words/add", self.add_word),
            ("POST", "/admin/words/remove", self.remove_word),
        ]

    @staticmethod
    def _actor(request: web.Request) -> Actor:
        return Actor(session_of(request).user_id, "dashboard")

    async def _user_change(
        self, request: web.Request, change: Callable[..., Any], done: str
    ) -> web.Response:
        user_id = int(request.match_info["user_id"])
        form = await request.post()
        try:
            await change(user_id, form, self._actor(request))
        except (FormError, StorageError) as exc:
            return await self.pages.user_page(request, user_id, error=str(exc))
        return await self.pages.user_page(request, user_id, done=done)

    async def set_quota(self, request: web.Request) -> web.Response:
        """``/admin quota set``: the user's own image limit per period."""

        async def change(user_id: int, form: Form, actor: Actor) -> None:
            images = whole(form, "images", 0, MAX_IMAGES)
            chosen = period(form)
            assert images is not None and chosen is not None
            await self.services.quotas.set_limit(user_id, images, chosen, actor=actor)

        return await self._user_change(request, change, "Quota saved.")

    async def set_caps(self, request: web.Request) -> web.Response:
        """``/admin limits user``: the user's running and queued job caps."""

        async def change(user_id: int, form: Form, actor: Actor) -> None:
            running = whole(form, "max_concurrent", 1, MAX_CONCURRENT, required=False)
            queued = whole(form, "max_queued", 1, MAX_QUEUED, required=False)
            await self.services.quotas.set_caps(
                user_id, max_concurrent=running, max_queued=queued, actor=actor
            )

        return await self._user_change(request, change, "Job caps saved.")

    async def reset(self, request: web.Request) -> web.Response:
        """``/admin quota reset``: usage in the current period starts over."""

        async def change(user_id: int, form: Form, actor: Actor) -> None:
            await self.services.quotas.reset(user_id, actor=actor)

        return await self._user_change(request, change, "Usage reset.")

    async def clear(self, request: web.Request) -> web.Response:
        """Drop the user's own limits: the server defaults apply again."""

        async def change(user_id: int, form: Form, actor: Actor) -> None:
            await self.services.quotas.clear_limits(user_id, actor=actor)

        return await self._user_change(request, change, "The server defaults apply again.")

    async def ban(self, request: web.Request) -> web.Response:
        """``/admin ban``."""

        async def change(user_id: int, form: Form, actor: Actor) -> None:
            await self.services.users.ban(user_id, actor=actor)

        return await self._user_change(request, change, "Banned.")

    async def unban(self, request: web.Request) -> web.Response:
        """``/admin unban``."""

        async def change(user_id: int, form: Form, actor: Actor) -> None:
            await self.services.users.unban(user_id, actor=actor)

        return await self._user_change(request, change, "Unbanned.")

    async def server_limits(self, request: web.Request) -> web.Response:
        """``/admin limits`` without a user: the server-wide defaults."""
        form = await request.post()
        try:
            images = whole(form, "images", 0, MAX_IMAGES, required=False)
            chosen = period(form, required=False)
            running = whole(form, "max_concurrent", 1, MAX_CONCURRENT, required=False)
            queued = whole(form, "max_queued", 1, MAX_QUEUED, required=False)
            await self.services.quotas.set_server_limits(
                images=images,
                period=chosen,
                max_concurrent=running,
                max_queued=queued,
                actor=self._actor(request),
            )
        except (FormError, StorageError) as exc:
            return await self.pages.users_page(request, error=str(exc))
        return await self.pages.users_page(request)

    async def add_word(self, request: web.Request) -> web.Response:
        """``/admin words add``."""
        form = await request.post()
        word = str(form.get("word", "")).strip()
        try:
            if not word:
                raise FormError("Give a word or phrase to ban.")
            added = await self.services.users.add_banned_word(word, actor=self._actor(request))
        except (FormError, StorageError) as exc:
            return await self.pages.moderation_page(request, error=str(exc))
        await self.services.banned.refresh()
        done = (
            f"Prompts containing “{word}” are now refused."
            if added
            else f"“{word}” was already banned."
        )
        return await self.pages.moderation_page(request, done=done)

    async def remove_word(self, request: web.Request) -> web.Response:
        """``/admin words remove``."""
        form = await request.post()
        word = str(form.get("word", "")).strip()
        try:
            removed = await self.services.users.remove_banned_word(word, actor=self._actor(request))
        except StorageError as exc:
            return await self.pages.moderation_page(request, error=str(exc))
        await self.services.banned.refresh()
        if not removed:
            return await self.pages.moderation_page(
                request, error=f"“{word}” is not on the banned list."
            )
        return await self.pages.moderation_page(request, done=f"“{word}” is allowed again.")
