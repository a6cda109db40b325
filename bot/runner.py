"""Process lifetime for ``imagine bot`` and ``imagine run``: storage, the bot, companions, stop.

``serve`` opens storage, builds the bot and runs it with any companion tasks (``imagine run``
passes the worker loop) until SIGTERM/SIGINT or until one of them ends. The token is checked by
Discord at login; a refused token becomes one clear line and exit status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

import aiohttp
import discord

from bot.client import ImagineBot, configure_endpoints
from bot.config import BotSettings
from bot.services import Services
from storage.bundle import open_storage
from storage.errors import ImageStoreError
from storage.metrics import Metrics

log = logging.getLogger(__name__)

Companion = Callable[[Services, asyncio.Event], Coroutine[Any, Any, None]]
SHUTDOWN_GRACE = 30.0


@contextlib.asynccontextmanager
async def open_services(
    settings: BotSettings, metrics: Metrics | None = None
) -> AsyncIterator[Services]:
    """Open the database and the image store; close them on exit."""
    if settings.storage.is_sqlite:
        settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    async with await open_storage(settings.storage) as storage:
        yield Services(
            settings=settings,
            db=storage.db,
            queue=storage.queue,
            quotas=storage.quotas,
            users=storage.users,
            images=storage.images,
            metrics=metrics,
        )


def token_of(settings: BotSettings) -> str | None:
    """The configured Discord token, or ``None`` when it is missing or blank."""
    if settings.discord_token is None:
        return None
    token = settings.discord_token.get_secret_value().strip()
    return token or None


async def serve(
    settings: BotSettings,
    *,
    migrate: bool,
    companions: Sequence[Companion] = (),
) -> int:
    """Run the bot (and companions) until stopped; the process exit status."""
    token = token_of(settings)
    if token is None:
        print(
            "imagine: no Discord token; set IMAGINE_DISCORD_TOKEN (or DISCORD_TOKEN)",
            file=sys.stderr,
        )
        return 2
    configure_endpoints(settings.discord_api_base, settings.discord_gateway_url)
    if migrate:
        from storage.migrate import upgrade

        if settings.storage.is_sqlite:
            settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(upgrade, settings.storage.database)
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    try:
        async with open_services(settings, metrics) as services:
            return await _run(services, token, companions)
    except ImageStoreError as exc:
        # Raised while opening (a missing bucket, refused credentials): before any login.
        print(f"imagine: {exc}", file=sys.stderr)
        return 1


async def _run(
    services: Services,
    token: str,
    companions: Sequence[Companion],
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    bot = ImagineBot(services)
    try:
        # Log in before starting anything else: a refused token fails fast, before a worker
        # spends its time loading a model.
        await bot.login(token)
    except discord.LoginFailure:
        await bot.close()
        print(
            "imagine: Discord refused the token (401 Unauthorized); check IMAGINE_DISCORD_TOKEN",
            file=sys.stderr,
        )
        return 1
    except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
        await bot.close()
        print(
            f"imagine: cannot start the bot against {services.settings.discord_api_base}: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    tasks = {asyncio.create_task(companion(services, stop)) for companion in companions}
    bot_task = asyncio.create_task(bot.connect(), name="imagine-bot")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({bot_task, stopper, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        await bot.close()
        if tasks:
            # Companions (the worker) finish or release their job on ``stop``.
            _, late = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        stopper.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    return _exit_status(bot_task, tasks)


def _exit_status(bot_task: asyncio.Task[None], tasks: set[asyncio.Task[None]]) -> int:
    status = 0
    if bot_task.done() and not bot_task.cancelled():
        exc = bot_task.exception()
        if exc is not None:
            log.error("the bot stopped", exc_info=exc)
            print(f"imagine: the bot stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
            status = 1
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("a companion task stopped", exc_info=exc)
            print(f"imagine: the worker stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
            status = 1
    return status
