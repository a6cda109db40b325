"""Single-image posts: which public message shows image n of a grid (one post per image)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from storage._ledger import upsert
from storage._queue_base import _positive_id, utcnow
from storage.contract import GRID_SIZE
from storage.db import Database
from storage.errors import InvalidValue
from storage.tables import single_posts


@dataclass(frozen=True)
class SinglePost:
    """The message that shows one image of a grid, and who posted it."""

    job_id: int
    index: int
    guild_id: int | None
    channel_id: int
    message_id: int
    user_id: int
    created_at: datetime


class SinglePosts:
    """Record and find the public post of each grid image."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self._clock = clock or utcnow

    async def get(self, job_id: int, index: int) -> SinglePost | None:
        """The post of image ``index`` of job ``job_id``, if there is one."""
        async with self.db.read() as conn:
            row = (
                (
                    await conn.execute(
                        select(single_posts).where(
                            single_posts.c.job_id == job_id, single_posts.c.index == index
                        )
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else SinglePost(**row)

    async def record(
        self,
        job_id: int,
        index: int,
        *,
        guild_id: int | None,
        channel_id: int,
        message_id: int,
        user_id: int,
    ) -> SinglePost:
        """Remember a post; when the image was already posted, the earlier post stays and is
        returned."""
        if not 0 <= index < GRID_SIZE:
            raise InvalidValue(f"image index must be 0 to {GRID_SIZE - 1}, got {index!r}")
        for name, value in (
            ("job id", job_id),
            ("guild id", guild_id),
            ("channel id", channel_id),
            ("message id", message_id),
            ("user id", user_id),
        ):
            _positive_id(name, value)
        values = {
            "job_id": job_id,
            "index": index,
            "guild_id": guild_id,
            "channel_id": channel_id,
            "message_id": message_id,
            "user_id": user_id,
            "created_at": self._clock(),
        }
        async with self.db.write() as tx:
            stmt = upsert(tx.conn, single_posts, values)
            await tx.conn.execute(stmt.on_conflict_do_nothing(index_elements=["job_id", "index"]))
        stored = await self.get(job_id, index)
        assert stored is not None
        return stored
