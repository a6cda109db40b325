"""A private event loop in a thread of its own, for bulk network transfers.

Sending or receiving megabytes through aiohttp copies buffers on the loop that runs it; on the
process's main loop that would stall everything else there (the bot's gateway heartbeat, the
worker handing the device its next job). Coroutines submitted here run on the private loop and
are awaited from any other loop; cancelling the awaiting task cancels them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class IoLoop:
    """Starts its thread on first use; ``stop`` ends it (a later use starts a new one)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the private loop and wait for its result here."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._running_loop())
        return await asyncio.wrap_future(future)

    async def stop(self) -> None:
        """Stop the thread once nothing runs on it any more."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()
