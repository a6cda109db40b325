"""Small asyncio helpers the run loop waits with, and the retry of writes it must not lose."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from storage.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
_FIRST_DELAY = 0.5
_MAX_DELAY = 10.0


async def first(*awaitables: Awaitable[object]) -> None:
    """Wait until the first of ``awaitables`` is done, then cancel the others."""
    waits = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


async def on_set(event: asyncio.Event, action: Callable[[], None]) -> None:
    """Run ``action`` once ``event`` is set."""
    await event.wait()
    action()


async def persist(what: str, write: Callable[[], Awaitable[T]]) -> T:
    """Run a storage write until the database takes it: while it is unavailable (locked or
    unreachable past storage's own retries), log and try again with backoff, never give up.

    For the writes a worker must not lose (finishing, failing, giving back a job): losing one
    would run a job twice or leave it to the reaper. Other errors propagate.
    """
    delay = _FIRST_DELAY
    attempt = 0
    while True:
        attempt += 1
        try:
            return await write()
        except DatabaseUnavailable as exc:
            log.warning(
                "%s: database unavailable (%s); trying again in %.1f s (attempt %d)",
                what,
                exc.detail,
                delay,
                attempt,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_DELAY)
