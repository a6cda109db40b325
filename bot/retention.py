"""The bot's hourly housekeeping: it forgets expired web sessions and used-up link nonces,
and applies ``image_retention_days`` by itself when it is set (``imagine purge`` does too)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from bot.services import Services
from storage.retention import purge, store_contents
from storage.weblinks import WebLogins

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL = 3600.0


async def housekeeping_loop(services: Services, retention_days: float | None) -> None:
    """Every hour until cancelled: forget expired logins and, with ``retention_days``, purge
    the images of jobs older than that."""
    retention = (
        (store_contents(services.images), timedelta(days=retention_days))
        if retention_days is not None
        else None
    )
    while True:
        try:
            forgotten = await WebLogins(services.db).forget_expired()
            if forgotten:
                log.info("forgot %d expired web session(s) and link(s)", forgotten)
            if retention is not None:
                blobs, older_than = retention
                report = await purge(
                    services.db, blobs, now=datetime.now(UTC), older_than=older_than
                )
                if report.jobs or report.temp_files or report.orphans:
                    log.info("retention: %s", "; ".join(report.lines()))
        except Exception:
            # The next hour tries again; an image store or database hiccup is no reason to stop.
            log.exception("housekeeping failed")
        await asyncio.sleep(HOUSEKEEPING_INTERVAL)
