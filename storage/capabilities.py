"""What the workers serve, merged: the bot checks LoRA, profile and ControlNet names (and what
each model's family can paint) against it.

Each worker registers its capabilities (``gpu_worker`` builds them from its configuration, less
what its host lacks the weights for) with ``JobQueue.register_worker``; a worker counts while it
was seen within ``fresh_seconds`` (an hour by default, so a worker that restarts or is down for
a while still counts: its jobs wait in the queue). Plain data, no torch: the bot stays slim.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select

from storage.db import Database
from storage.families import family_of
from storage.tables import workers

FRESH_SECONDS = 3600.0


class Registered(Protocol):
    """A registered worker row (``storage.queue.WorkerInfo``)."""

    @property
    def last_seen(self) -> datetime: ...
    @property
    def capabilities(self) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True)
class Offered:
    """The union of what live workers serve."""

    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    loras: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    controlnets: frozenset[str] = frozenset()
    ip_adapter: bool = False
    translation: bool = False
    # Model alias -> family ("sdxl", "cascade"; ``storage.families``).
    families: Mapping[str, str] = field(default_factory=dict)

    def family(self, model: str | None) -> str:
        """The family of alias ``model`` (None: the default model), SDXL when none said."""
        return family_of(self.families, model)

    def unknown_loras(self, names: Iterable[str]) -> list[str]:
        """The names no live worker serves, in the order given."""
        return [name for name in names if name not in self.loras]

    def styles(self) -> list[tuple[str, str, float]]:
        """(name, trigger words, default weight) of every LoRA style, sorted by name."""
        return [
            (name, str(info.get("trigger", "")), float(info.get("weight", 1.0)))
            for name, info in sorted(self.loras.items())
        ]


def merge(
    workers: Iterable[Registered], now: datetime, fresh_seconds: float = FRESH_SECONDS
) -> Offered:
    """What the workers seen within ``fresh_seconds`` of ``now`` serve together."""
    profiles: dict[str, Mapping[str, Any]] = {}
    loras: dict[str, Mapping[str, Any]] = {}
    controlnets: set[str] = set()
    families: dict[str, str] = {}
    ip_adapter = translation = False
    oldest = now - timedelta(seconds=fresh_seconds)
    for worker in workers:
        served = worker.capabilities
        if not served or worker.last_seen < oldest:
            continue
        profiles.update(served.get("profiles") or {})
        loras.update(served.get("loras") or {})
        controlnets.update(served.get("controlnets") or ())
        families.update(served.get("families") or {})
        ip_adapter = ip_adapter or bool(served.get("ip_adapter"))
        translation = translation or bool(served.get("translation"))
    return Offered(
        profiles=profiles,
        loras=loras,
        controlnets=frozenset(controlnets),
        ip_adapter=ip_adapter,
        translation=translation,
        families=families,
    )


@dataclass(frozen=True)
class _Row:
    last_seen: datetime
    capabilities: Mapping[str, Any] | None


async def read_offered(
    db: Database, now: datetime, fresh_seconds: float = FRESH_SECONDS
) -> Offered:
    """What the workers recorded in ``db`` serve together (see ``merge``)."""
    async with db.read() as conn:
        rows = await conn.execute(select(workers.c.last_seen, workers.c.capabilities))
        registered = [_Row(row.last_seen, row.capabilities) for row in rows]
    return merge(registered, now, fresh_seconds)
