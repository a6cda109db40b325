"""The bot applies ``image_retention_days`` by itself, once an hour (``imagine purge`` too)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from bot.services import Services
from storage.retention import purge, store_contents
from storage.weblinks import WebLogins

log = logging.getLogger(__name__)

RETENTION_INTERVAL = 3600.0


async def retention_loop(services: Services, days: float) -> None:
    """Purge images of jobs older than ``days`` every hour until cancelled."""
    blobs = store_contents(services.images)
    while True:
        try:
            report = await purge(
                services.db,
                blobs,
                now=datetime.now(UTC),
                older_than=timedelta(days=days),
            )
            await WebLogins(services.db).forget_expired()
            if report.jobs or report.temp_files or report.orphans:
                log.info("retention: %s", "; ".join(report.lines()))
        except Exception:
            # The next hour tries again; an image store or database hiccup is no reason to stop.
            log.exception("retention purge failed")
        await asyncio.sleep(RETENTION_INTERVAL)
