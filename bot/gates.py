"""In-process gates for U posts: one post at a time per grid image, and a cooldown per user."""

from __future__ import annotations

import time
from collections.abc import Callable

# Forget users whose cooldown ended once this many are remembered.
_PRUNE_AT = 4096


class PostGate:
    """In-process bookkeeping for U posts: one post at a time per image, a cooldown per user."""

    def __init__(self, cooldown: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not cooldown >= 0:
            raise ValueError(f"the U button cooldown must be 0 seconds or more, got {cooldown!r}")
        self.cooldown = cooldown
        self._clock = clock
        self._posting: set[tuple[int, int]] = set()
        self._last: dict[int, float] = {}

    def begin(self, job_id: int, index: int) -> bool:
        """Start posting an image; ``False`` while another click posts the same one."""
        key = (job_id, index)
        if key in self._posting:
            return False
        self._posting.add(key)
        return True

    def end(self, job_id: int, index: int) -> None:
        """The post of that image is done (or failed)."""
        self._posting.discard((job_id, index))

    def take(self, user_id: int) -> float:
        """0.0 and the user's cooldown starts now, or the seconds left before they may post."""
        now = self._clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self.cooldown:
            return self.cooldown - (now - last)
        if len(self._last) >= _PRUNE_AT:
            self._last = {u: t for u, t in self._last.items() if now - t < self.cooldown}
        self._last[user_id] = now
        return 0.0
