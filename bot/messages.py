"""Bookkeeping that keeps the posting, progress and delivery paths off each other's messages.

One job message is written by three paths: the command that posts it, the progress loop that
edits in the percentage and preview, and the delivery loop that puts the result in. A per-job
lock serialises their edits, a finished job is never edited by progress again, and a job whose
message is still being posted is left alone by delivery (so a result is never posted twice).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

# A delivered job leaves the running list at once; its id is remembered only long enough to
# stop a progress edit read from an older snapshot.
FINAL_MEMORY_SECONDS = 300.0


class MessageSlots:
    """Per-job locks and state shared by the posting, progress and delivery paths."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._locks: dict[int, asyncio.Lock] = {}
        self._posting: set[int] = set()
        self._final: OrderedDict[int, float] = OrderedDict()

    def lock(self, job_id: int) -> asyncio.Lock:
        """The lock held while a path edits this job's message."""
        lock = self._locks.get(job_id)
        if lock is None:
            lock = self._locks[job_id] = asyncio.Lock()
        return lock

    def start_posting(self, job_ids: Iterable[int]) -> None:
        """Mark jobs whose message the command path is about to post (call without awaiting)."""
        self._posting.update(job_ids)

    def done_posting(self, job_id: int) -> None:
        """The command path stored the message id (or gave up)."""
        self._posting.discard(job_id)

    def is_posting(self, job_id: int) -> bool:
        """Whether the command path still owns this job's message."""
        return job_id in self._posting

    def finalize(self, job_id: int) -> None:
        """The result is in; progress must not touch this message again."""
        now = self._clock()
        self._final[job_id] = now
        self._locks.pop(job_id, None)
        while self._final and next(iter(self._final.values())) < now - FINAL_MEMORY_SECONDS:
            self._final.popitem(last=False)

    def is_final(self, job_id: int) -> bool:
        """Whether the result has been delivered by this process."""
        return job_id in self._final
