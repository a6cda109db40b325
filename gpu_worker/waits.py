"""Small asyncio helpers the run loop waits with."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


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
