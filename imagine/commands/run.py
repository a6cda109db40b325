"""``imagine run``: bot and worker in one process, SQLite under the data dir by default."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from imagine.settings import Settings

if TYPE_CHECKING:
    from bot.services import Services


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Apply migrations, then run the bot and a worker until SIGTERM/SIGINT."""
    from bot.runner import serve, token_of
    from imagine.commands._logs import configure_logging

    bot = settings.bot()
    configure_logging(settings)
    if token_of(bot) is None:
        # Reported before the worker (and torch) is loaded, so the mistake shows at once.
        return asyncio.run(serve(bot, migrate=False))

    from gpu_worker.loop import run_worker
    from imagine.commands._logs import route_model_library_logs

    route_model_library_logs()

    async def worker(services: Services, stop: asyncio.Event) -> None:
        await run_worker(
            settings.worker(),
            stop=stop,
            queue=services.queue,
            images=services.images,
            metrics=services.metrics,
        )

    return asyncio.run(serve(bot, migrate=True, companions=[worker]))
