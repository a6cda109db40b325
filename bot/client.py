"""The discord.py client: extensions, persistent buttons, loops and command sync."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import discord
import yarl
from discord.ext import commands

from bot.actions import Click
from bot.buttons import JobButton, orphan_problem, refuse
from bot.clicks import handle_click
from bot.delivery import Courier
from bot.errors import ErrorTree
from bot.retention import housekeeping_loop
from bot.safety import Resolver, system_resolver
from bot.services import Services
from bot.settings_menu import SettingsSelect
from bot.web import region
from bot.web.server import WebServer
from bot.web.site import start_web

log = logging.getLogger(__name__)

EXTENSIONS = (
    "bot.exts.imagine",
    "bot.exts.user",
    "bot.exts.admin",
    "bot.exts.styles",
    "bot.exts.history",
    "bot.exts.help",
)
BANNED_WORDS_REFRESH = 60.0
# How long ``close`` lets clicks in progress finish (a post, then recording it).
CLICK_GRACE = 10.0
QUEUE_GAUGES_REFRESH = 15.0


def configure_endpoints(api_base: str, gateway_url: str) -> None:
    """Point discord.py at a Discord-compatible server (REST base and gateway URL).

    discord.py reads both from class attributes, so this is process-wide; call it before login.
    """
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class ImagineBot(commands.Bot):
    """The imagine bot; everything it needs comes in through ``services``.

    Image prompts are fetched with a session from ``fetch_session`` and host names resolved
    by ``resolver`` (the system's by default), both behind the SSRF guard.
    """

    def __init__(
        self,
        services: Services,
        *,
        fetch_session: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession,
        resolver: Resolver = system_resolver,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents,
            tree_cls=ErrorTree,
            # Prompts are user text: nothing the bot sends pings anyone unless a message says
            # so itself (job messages ping their owner, see ``render.pings``).
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.services = services
        self.image_resolver = resolver
        self._fetch_session = fetch_session
        self.courier = Courier(self, services)
        self._session: aiohttp.ClientSession | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._clicks: set[asyncio.Task[Any]] = set()
        self.synced = asyncio.Event()
        self.ready_event = asyncio.Event()
        self.web: WebServer | None = None

    async def handle_click(self, interaction: discord.Interaction, click: Click, /) -> None:
        """Act on a job button (``JobButton`` hands its clicks here)."""
        task = asyncio.current_task()
        if task is not None:
            self._clicks.add(task)
        try:
            await handle_click(interaction, click)
        finally:
            self._clicks.discard(task)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Answer clicks on ``imagine:`` buttons that no job button takes (malformed, forged)."""
        problem = orphan_problem(interaction)
        if problem is not None:
            await refuse(interaction, problem)

    @property
    def http_session(self) -> aiohttp.ClientSession:
        """The session used to fetch image prompts (created in ``setup_hook``)."""
        if self._session is None:
            raise RuntimeError("the bot has not been set up yet")
        return self._session

    async def setup_hook(self) -> None:
        """Load extensions, register persistent items, start the loops, sync commands."""
        self._session = self._fetch_session()
        self.web = await start_web(
            self, self.services, [lambda server: region.setup(server, self, self.services)]
        )
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.add_dynamic_items(JobButton, SettingsSelect)
        await self.services.banned.refresh()
        if not self.services.rules.has_admins():
            log.warning(
                "nobody can use /admin: set admin_guild_ids (or guild_ids), admin_user_ids or "
                "admin_role_ids"
            )
        self._start(self.courier.delivery_loop(), "delivery")
        self._start(self.courier.progress_loop(), "progress")
        self._start(self._refresh_banned_words(), "banned-words")
        if self.services.metrics is not None:
            self._start(self._refresh_queue_gauges(), "queue-gauges")
        retention = self.services.settings.image_retention_days
        self._start(housekeeping_loop(self.services, retention), "housekeeping")
        await self.sync_commands()

    def _start(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"imagine-{name}")
        task.add_done_callback(self._loop_ended)
        self._loops.append(task)

    @staticmethod
    def _loop_ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the %s loop stopped", task.get_name(), exc_info=task.exception())

    async def _refresh_banned_words(self) -> None:
        while True:
            await asyncio.sleep(BANNED_WORDS_REFRESH)
            try:
                await self.services.banned.refresh()
            except Exception:
                log.exception("could not refresh the banned words")

    async def _refresh_queue_gauges(self) -> None:
        while True:
            try:
                await self.update_queue_gauges()
            except Exception:
                log.exception("could not read the queue depth")
            await asyncio.sleep(QUEUE_GAUGES_REFRESH)

    async def update_queue_gauges(self) -> None:
        """Set the queue depth and running-jobs gauges from storage."""
        if self.services.metrics is None:
            return
        stats = await self.services.queue.stats()
        self.services.metrics.queue_depth.set(stats.queued)
        self.services.metrics.running_jobs.set(stats.running)

    async def sync_commands(self) -> None:
        """Sync slash commands: to the configured guilds at once, else globally."""
        guild_ids = self.services.settings.guild_ids
        if guild_ids:
            for guild_id in guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        self.synced.set()

    async def on_ready(self) -> None:
        """Connected to the gateway with the guilds loaded."""
        log.info("connected as %s", self.user)
        self.ready_event.set()

    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Invited to a guild: leave it at once unless ``allowed_guild_ids`` allows it."""
        await self._leave_if_not_allowed(guild)

    async def on_guild_available(self, guild: discord.Guild) -> None:
        """A guild the bot is in, at start-up or back online: the same check."""
        await self._leave_if_not_allowed(guild)

    async def _leave_if_not_allowed(self, guild: discord.Guild) -> None:
        if self.services.rules.allows_guild(guild.id):
            return
        log.warning("leaving guild %s (%s): it is not in allowed_guild_ids", guild.id, guild.name)
        try:
            await guild.leave()
        except discord.HTTPException as exc:
            log.error("could not leave guild %s: %s", guild.id, exc)

    async def close(self) -> None:
        """Let clicks in progress finish, stop the loops and the fetch session, disconnect."""
        clicks = {task for task in self._clicks if task is not asyncio.current_task()}
        if clicks:
            # A click stopped halfway could post a single image without recording the post.
            await asyncio.wait(clicks, timeout=CLICK_GRACE)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.web is not None:
            await self.web.stop()
            self.web = None
        await super().close()
