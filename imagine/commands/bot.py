"""``imagine bot``: the Discord bot alone, against any configured database."""

from __future__ import annotations

import argparse
import asyncio

from imagine.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the bot until SIGTERM/SIGINT; migrations are applied here only on SQLite."""
    from bot.runner import serve
    from imagine.commands._logs import configure_logging

    bot = settings.bot()
    configure_logging(settings)
    # PostgreSQL schemas are upgraded by `imagine migrate` (one migrator per deployment); the
    # embedded SQLite file has no separate migration step, so it is brought to head here.
    return asyncio.run(serve(bot, migrate=settings.is_sqlite))
