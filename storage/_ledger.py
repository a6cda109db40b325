"""SQL shared by the queue and the quotas: users, effective limits, usage and the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.contract import MAX_ID
from storage.errors import InvalidValue
from storage.limits import Limits, period_start
from storage.tables import images, jobs, ledger, server_limits, user_limits, users


def check_user_id(user_id: int) -> int:
    """``user_id`` if it looks like a Discord id (1 to ``MAX_ID``), else InvalidValue."""
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id <= MAX_ID:
        raise InvalidValue(
            f"user id must be a positive Discord id, got {user_id!r} (at most {MAX_ID})"
        )
    return user_id


def upsert(conn: AsyncConnection, table: Any, values: dict[str, Any]) -> Any:
    """An INSERT for ``table`` that the caller turns into an upsert (dialect-specific)."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table).values(**values)


async def ensure_user(conn: AsyncConnection, user_id: int, now: datetime) -> None:
    """Create the user row if it does not exist yet."""
    stmt = upsert(conn, users, {"id": user_id, "created_at": now, "updated_at": now})
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=["id"]))


async def lock_user(conn: AsyncConnection, user_id: int, now: datetime) -> bool:
    """Create the user if needed and hold its row lock until commit; returns ``banned``.

    Every quota decision for a user happens under this lock, so concurrent commands from one
    user are checked one after another (SQLite's ``BEGIN IMMEDIATE`` already serializes).
    """
    await ensure_user(conn, user_id, now)
    query = select(users.c.banned).where(users.c.id == user_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return bool((await conn.execute(query)).scalar_one())


async def user_exists(conn: AsyncConnection, user_id: int) -> bool:
    """Whether the user was ever recorded."""
    row = await conn.execute(select(users.c.id).where(users.c.id == user_id))
    return row.first() is not None


async def server_defaults(conn: AsyncConnection, defaults: Limits) -> Limits:
    """The settings' limits with the admins' server-wide overrides applied."""
    row = (await conn.execute(select(server_limits).where(server_limits.c.id == 1))).first()
    if row is None:
        return defaults
    return _merge(defaults, row._mapping)


async def effective_limits(
    conn: AsyncConnection, user_id: int, defaults: Limits
) -> tuple[Limits, bool]:
    """The limits that apply to the user, and whether the user has any of their own."""
    base = await server_defaults(conn, defaults)
    row = (await conn.execute(select(user_limits).where(user_limits.c.user_id == user_id))).first()
    if row is None:
        return base, False
    return _merge(base, row._mapping), True


def _merge(base: Limits, row: Any) -> Limits:
    return Limits(
        images=base.images if row["images"] is None else row["images"],
        period=base.period if row["period"] is None else row["period"],
        max_concurrent=(
            base.max_concurrent if row["max_concurrent"] is None else row["max_concurrent"]
        ),
        max_queued=base.max_queued if row["max_queued"] is None else row["max_queued"],
        relax_images=base.relax_images,
    )


@dataclass(frozen=True)
class Usage:
    """Images counted against the current period."""

    used: int
    granted: int


async def usage(conn: AsyncConnection, user_id: int, period: str, now: datetime) -> Usage:
    """Reservations minus refunds, and grants, since the period began or the last reset."""
    start = period_start(period, now)
    last_reset = (
        await conn.execute(
            select(func.coalesce(func.max(ledger.c.id), 0)).where(
                ledger.c.user_id == user_id, ledger.c.kind == "reset"
            )
        )
    ).scalar_one()
    # A refund belongs where its reservation was: same period (period_at) and same side of a
    # reset (refund_of), so resets and refunds never add up to negative usage.
    anchor = func.coalesce(ledger.c.refund_of, ledger.c.id)
    rows = await conn.execute(
        select(ledger.c.kind, func.coalesce(func.sum(ledger.c.amount), 0))
        .where(
            ledger.c.user_id == user_id,
            ledger.c.kind.in_(("reserve", "refund", "grant")),
            ledger.c.period_at >= start,
            anchor > last_reset,
        )
        .group_by(ledger.c.kind)
    )
    sums = {kind: int(total) for kind, total in rows}
    return Usage(used=sums.get("reserve", 0) + sums.get("refund", 0), granted=-sums.get("grant", 0))


async def relax_usage(conn: AsyncConnection, user_id: int, now: datetime) -> int:
    """Relax images of the user's jobs queued today (UTC) that did not fail or get cancelled.

    Failed and cancelled jobs are left out, as their quota would be refunded.
    """
    total = await conn.execute(
        select(func.coalesce(func.sum(jobs.c.relax_images), 0)).where(
            jobs.c.user_id == user_id,
            jobs.c.relax_images > 0,
            jobs.c.created_at >= period_start("day", now),
            jobs.c.status.not_in(("failed", "cancelled")),
        )
    )
    return int(total.scalar_one())


async def job_counts(conn: AsyncConnection, user_id: int) -> dict[str, int]:
    """The user's jobs by status."""
    rows = await conn.execute(
        select(jobs.c.status, func.count())
        .where(jobs.c.user_id == user_id, jobs.c.status.in_(("queued", "running")))
        .group_by(jobs.c.status)
    )
    return {status: int(count) for status, count in rows}


async def lifetime_images(conn: AsyncConnection, user_id: int) -> int:
    """Images (not grids) the user's jobs have produced, ever."""
    count = await conn.execute(
        select(func.count())
        .select_from(images.join(jobs, images.c.job_id == jobs.c.id))
        .where(jobs.c.user_id == user_id, images.c.index >= 0)
    )
    return int(count.scalar_one())


async def gpu_seconds_used(conn: AsyncConnection, user_id: int) -> float:
    """Seconds the device spent on the user's finished jobs, ever."""
    total = await conn.execute(
        select(func.coalesce(func.sum(jobs.c.gpu_seconds), 0.0)).where(jobs.c.user_id == user_id)
    )
    return float(total.scalar_one())


async def add_entry(
    conn: AsyncConnection,
    *,
    user_id: int,
    kind: str,
    amount: int,
    now: datetime,
    job_id: int | None = None,
    period_at: datetime | None = None,
    refund_of: int | None = None,
    note: str | None = None,
) -> None:
    """Append one ledger entry."""
    await conn.execute(
        ledger.insert().values(
            user_id=user_id,
            job_id=job_id,
            kind=kind,
            amount=amount,
            period_at=period_at or now,
            created_at=now,
            refund_of=refund_of,
            note=note,
        )
    )


async def refund_job(conn: AsyncConnection, job_id: int, now: datetime, note: str) -> int:
    """Return a job's reservation, once; the number of images refunded."""
    reservation = (
        await conn.execute(
            select(ledger.c.id, ledger.c.user_id, ledger.c.amount, ledger.c.period_at).where(
                ledger.c.job_id == job_id, ledger.c.kind == "reserve"
            )
        )
    ).first()
    if reservation is None or reservation.amount == 0:
        return 0
    already = await conn.execute(select(ledger.c.id).where(ledger.c.refund_of == reservation.id))
    if already.first() is not None:
        return 0
    await add_entry(
        conn,
        user_id=reservation.user_id,
        kind="refund",
        amount=-reservation.amount,
        now=now,
        job_id=job_id,
        period_at=reservation.period_at,
        refund_of=reservation.id,
        note=note,
    )
    return int(reservation.amount)
