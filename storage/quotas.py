"""Quotas: per-user limits over server defaults, usage from the ledger, resets and grants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from storage._ledger import (
    add_entry,
    check_user_id,
    effective_limits,
    ensure_user,
    gpu_seconds_used,
    job_counts,
    lifetime_images,
    lock_user,
    relax_usage,
    server_defaults,
    upsert,
    usage,
    user_exists,
)
from storage.audit import Actor, record
from storage.db import Database
from storage.errors import InvalidValue, UserNotFound
from storage.limits import (
    MAX_IMAGES,
    Limits,
    check_cap,
    check_images,
    check_period,
    period_end,
)
from storage.queue import utcnow
from storage.tables import server_limits, user_limits


@dataclass(frozen=True)
class QuotaStatus:
    """A user's limits and usage right now (what ``/info`` and ``quota show`` print)."""

    user_id: int
    limit: int
    period: str
    used: int
    granted: int
    left: int
    running: int
    queued: int
    lifetime_images: int
    resets_at: datetime | None
    max_concurrent: int
    max_queued: int
    custom: bool
    gpu_seconds: float = 0.0
    relax_used: int = 0
    relax_limit: int = 0

    def lines(self) -> list[str]:
        """Human-readable ``name: value`` lines, as ``imagine quota show`` prints them."""
        source = "own limit" if self.custom else "server default"
        per = "in total" if self.period == "total" else f"per {self.period}"
        resets = f"{self.resets_at:%Y-%m-%d %H:%M} UTC" if self.resets_at else "never"
        lines = [
            f"user: {self.user_id}",
            f"limit: {self.limit} images {per} ({source})",
            f"used: {self.used}",
        ]
        if self.granted:
            lines.append(f"granted: {self.granted}")
        lines.append(f"left: {self.left}")
        lines.append(f"resets: {resets}")
        lines.append(f"running: {self.running} (at most {self.max_concurrent})")
        lines.append(f"queued: {self.queued} (at most {self.max_queued})")
        lines.append(f"relax: {self.relax_used} of {self.relax_limit} images today")
        lines.append(f"lifetime images: {self.lifetime_images}")
        lines.append(f"gpu time: {self.gpu_seconds:.1f} s")
        return lines


class Quotas:
    """Read and change quotas; server defaults come from ``limits`` (built from settings)."""

    def __init__(
        self,
        db: Database,
        limits: Limits | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.db = db
        self.limits = limits or Limits()
        self._clock = clock or utcnow

    async def status(self, user_id: int) -> QuotaStatus:
        """Limits and usage; users never seen get the server defaults and zero usage."""
        check_user_id(user_id)
        async with self.db.read() as conn:
            return await self._status(conn, user_id, self._clock())

    async def set_limit(
        self, user_id: int, images: int, period: str, *, actor: Actor | None = None
    ) -> QuotaStatus:
        """Give the user their own image limit per period (``actor`` is recorded in the audit)."""
        check_user_id(user_id)
        check_images(images)
        check_period(period)
        return await self._set_user(
            user_id, {"images": images, "period": period}, actor, "quota.set"
        )

    async def set_caps(
        self,
        user_id: int,
        *,
        max_concurrent: int | None,
        max_queued: int | None,
        actor: Actor | None = None,
    ) -> QuotaStatus:
        """Give the user their own job caps; None leaves that cap as it is."""
        check_user_id(user_id)
        values: dict[str, object] = {}
        if max_concurrent is not None:
            values["max_concurrent"] = check_cap("max_concurrent", max_concurrent)
        if max_queued is not None:
            values["max_queued"] = check_cap("max_queued", max_queued)
        if not values:
            raise InvalidValue("give max_concurrent, max_queued or both")
        return await self._set_user(user_id, values, actor, "limits.set")

    async def clear_limits(self, user_id: int, *, actor: Actor | None = None) -> QuotaStatus:
        """Drop the user's own limits so the server defaults apply again."""
        check_user_id(user_id)
        now = self._clock()
        async with self.db.write() as tx:
            if not await user_exists(tx.conn, user_id):
                raise UserNotFound(f"User {user_id} has never used the bot.")
            await tx.conn.execute(user_limits.delete().where(user_limits.c.user_id == user_id))
            await record(tx.conn, actor, "limits.clear", user_id, now)
            return await self._status(tx.conn, user_id, now)

    async def set_server_limits(
        self,
        *,
        images: int | None = None,
        period: str | None = None,
        max_concurrent: int | None = None,
        max_queued: int | None = None,
        actor: Actor | None = None,
    ) -> Limits:
        """Override server-wide defaults in the database (None leaves a value as it is)."""
        values: dict[str, object] = {}
        if images is not None:
            values["images"] = check_images(images)
        if period is not None:
            values["period"] = check_period(period)
        if max_concurrent is not None:
            values["max_concurrent"] = check_cap("max_concurrent", max_concurrent)
        if max_queued is not None:
            values["max_queued"] = check_cap("max_queued", max_queued)
        if not values:
            raise InvalidValue("give at least one of images, period, max_concurrent, max_queued")
        now = self._clock()
        async with self.db.write() as tx:
            stmt = upsert(tx.conn, server_limits, {"id": 1, "updated_at": now, **values})
            await tx.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["id"], set_={"updated_at": now, **values}
                )
            )
            await record(tx.conn, actor, "server_limits.set", None, now, **values)
            return await server_defaults(tx.conn, self.limits)

    async def server_limits(self) -> Limits:
        """The server-wide defaults in force (settings plus database overrides)."""
        async with self.db.read() as conn:
            return await server_defaults(conn, self.limits)

    async def reset(self, user_id: int, *, actor: Actor | None = None) -> QuotaStatus:
        """Start the user's usage over from zero (a ``reset`` ledger entry)."""
        check_user_id(user_id)
        now = self._clock()
        async with self.db.write() as tx:
            if not await user_exists(tx.conn, user_id):
                raise UserNotFound(f"User {user_id} has never used the bot.")
            await lock_user(tx.conn, user_id, now)
            before = await self._status(tx.conn, user_id, now)
            await add_entry(
                tx.conn,
                user_id=user_id,
                kind="reset",
                amount=-before.used,
                now=now,
                note=f"reset with {before.used} used",
            )
            await record(tx.conn, actor, "quota.reset", user_id, now, used=before.used)
            return await self._status(tx.conn, user_id, now)

    async def grant(self, user_id: int, images: int) -> QuotaStatus:
        """Give the user extra images for the current period."""
        check_user_id(user_id)
        if isinstance(images, bool) or not isinstance(images, int) or not 1 <= images <= MAX_IMAGES:
            raise InvalidValue(
                f"a grant must be a whole number of images from 1 to {MAX_IMAGES}, got {images!r}"
            )
        now = self._clock()
        async with self.db.write() as tx:
            await lock_user(tx.conn, user_id, now)
            await add_entry(tx.conn, user_id=user_id, kind="grant", amount=-images, now=now)
            return await self._status(tx.conn, user_id, now)

    async def _set_user(
        self, user_id: int, values: dict[str, object], actor: Actor | None, action: str
    ) -> QuotaStatus:
        now = self._clock()
        async with self.db.write() as tx:
            await ensure_user(tx.conn, user_id, now)
            stmt = upsert(tx.conn, user_limits, {"user_id": user_id, "updated_at": now, **values})
            await tx.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["user_id"], set_={"updated_at": now, **values}
                )
            )
            await record(tx.conn, actor, action, user_id, now, **values)
            return await self._status(tx.conn, user_id, now)

    async def _status(self, conn: AsyncConnection, user_id: int, now: datetime) -> QuotaStatus:
        limits, custom = await effective_limits(conn, user_id, self.limits)
        used = await usage(conn, user_id, limits.period, now)
        counts = await job_counts(conn, user_id)
        return QuotaStatus(
            user_id=user_id,
            limit=limits.images,
            period=limits.period,
            used=used.used,
            granted=used.granted,
            left=max(0, limits.images + used.granted - used.used),
            running=counts.get("running", 0),
            queued=counts.get("queued", 0),
            lifetime_images=await lifetime_images(conn, user_id),
            resets_at=period_end(limits.period, now),
            max_concurrent=limits.max_concurrent,
            max_queued=limits.max_queued,
            custom=custom,
            gpu_seconds=await gpu_seconds_used(conn, user_id),
            relax_used=await relax_usage(conn, user_id, now),
            relax_limit=limits.relax_images,
        )
