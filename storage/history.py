"""Reads about past jobs: lists with filters, one job's whole record, activity over time.

For ``imagine jobs``, ``/history``, ``/show`` and the admin dashboard. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select

from storage.contract import ImageRecord, Job, JobKind, JobStatus
from storage.db import Database
from storage.errors import InvalidValue, JobNotFound
from storage.queue import WorkerInfo, utcnow
from storage.tables import images, jobs, ledger, users, workers

MAX_LIST = 500
# Listings leave the progress preview out: it is up to 512 KiB per job and never shown there.
_LISTED = [column for column in jobs.c if column.name != "preview"]


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger row of a job (reservation, refund)."""

    id: int
    kind: str
    amount: int
    period_at: datetime
    created_at: datetime
    note: str | None
    refund_of: int | None


@dataclass(frozen=True)
class JobRecord:
    """Everything stored about one job."""

    job: Job
    images: tuple[ImageRecord, ...]
    ledger: tuple[LedgerEntry, ...]
    parent: Job | None
    children: tuple[Job, ...]
    worker: WorkerInfo | None


@dataclass(frozen=True)
class Activity:
    """Jobs created per hour and GPU seconds per day over a window ending now."""

    since: datetime
    jobs_per_hour: tuple[tuple[datetime, int], ...]
    gpu_seconds_per_day: tuple[tuple[datetime, float], ...]


def _check_filters(status: str | None, kind: str | None, limit: int) -> None:
    if status is not None and status not in {s.value for s in JobStatus}:
        raise InvalidValue(
            f"job status must be one of {', '.join(s.value for s in JobStatus)}; got {status!r}"
        )
    if kind is not None and kind not in {k.value for k in JobKind}:
        raise InvalidValue(
            f"job kind must be one of {', '.join(k.value for k in JobKind)}; got {kind!r}"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise InvalidValue(f"a job list holds 1 to {MAX_LIST} jobs, got {limit!r}")


class JobHistory:
    """Read-only views of jobs for people: listings, records and charts."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self._clock = clock or utcnow

    async def find(
        self,
        *,
        user_id: int | None = None,
        status: str | None = None,
        kind: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """The newest jobs first, filtered by user, status and kind; ``before_id`` pages on."""
        _check_filters(status, kind, limit)
        conditions: list[Any] = []
        if user_id is not None:
            conditions.append(jobs.c.user_id == user_id)
        if status is not None:
            conditions.append(jobs.c.status == status)
        if kind is not None:
            conditions.append(jobs.c.kind == kind)
        if before_id is not None:
            conditions.append(jobs.c.id < before_id)
        query = select(*_LISTED).order_by(jobs.c.id.desc()).limit(limit)
        if conditions:
            query = query.where(and_(*conditions))
        return await self._jobs(query)

    async def _jobs(self, query: Select[Any]) -> list[Job]:
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [Job.from_row(row) for row in rows]

    async def record(self, job_id: int) -> JobRecord:
        """The job with its images, ledger rows, parent, children and worker."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(*_LISTED).where(jobs.c.id == job_id))).mappings()
            found = row.first()
            if found is None:
                raise JobNotFound(f"There is no job {job_id}.")
            job = Job.from_row(found)
            image_rows = (
                await conn.execute(
                    select(images).where(images.c.job_id == job_id).order_by(images.c.index)
                )
            ).mappings()
            stored = tuple(ImageRecord.from_row(r) for r in image_rows)
            entries = tuple(
                LedgerEntry(
                    id=r["id"],
                    kind=r["kind"],
                    amount=r["amount"],
                    period_at=r["period_at"],
                    created_at=r["created_at"],
                    note=r["note"],
                    refund_of=r["refund_of"],
                )
                for r in (
                    await conn.execute(
                        select(ledger).where(ledger.c.job_id == job_id).order_by(ledger.c.id)
                    )
                ).mappings()
            )
            parent = None
            if job.parent_job_id is not None:
                parent_row = (
                    (await conn.execute(select(*_LISTED).where(jobs.c.id == job.parent_job_id)))
                    .mappings()
                    .first()
                )
                parent = None if parent_row is None else Job.from_row(parent_row)
            children = tuple(
                Job.from_row(r)
                for r in (
                    await conn.execute(
                        select(*_LISTED).where(jobs.c.parent_job_id == job_id).order_by(jobs.c.id)
                    )
                ).mappings()
            )
            worker = None
            if job.lease_owner is not None:
                worker_row = (
                    (await conn.execute(select(workers).where(workers.c.id == job.lease_owner)))
                    .mappings()
                    .first()
                )
                worker = None if worker_row is None else WorkerInfo(**worker_row)
        return JobRecord(job, stored, entries, parent, children, worker)

    async def activity(self, days: int = 7) -> Activity:
        """Jobs created per hour and GPU seconds per day (UTC) over the last ``days`` days."""
        if not 1 <= days <= 90:
            raise InvalidValue(f"activity covers 1 to 90 days, got {days!r}")
        now = self._clock()
        first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=24 * days - 1)
        first_day = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
            days=days - 1
        )
        since = min(first_hour, first_day)
        async with self.db.read() as conn:
            created = (
                await conn.execute(select(jobs.c.created_at).where(jobs.c.created_at >= since))
            ).scalars()
            hours: dict[datetime, int] = {}
            for moment in created:
                hour = moment.replace(minute=0, second=0, microsecond=0)
                hours[hour] = hours.get(hour, 0) + 1
            finished = await conn.execute(
                select(jobs.c.finished_at, jobs.c.gpu_seconds).where(
                    jobs.c.finished_at >= first_day, jobs.c.gpu_seconds.is_not(None)
                )
            )
            per_day: dict[datetime, float] = {}
            for moment, seconds in finished:
                day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
                per_day[day] = per_day.get(day, 0.0) + float(seconds)
        hour_keys = [first_hour + timedelta(hours=h) for h in range(24 * days)]
        day_keys = [first_day + timedelta(days=d) for d in range(days)]
        return Activity(
            since=since,
            jobs_per_hour=tuple((h, hours.get(h, 0)) for h in hour_keys),
            gpu_seconds_per_day=tuple((d, per_day.get(d, 0.0)) for d in day_keys),
        )

    async def banned_users(self) -> list[int]:
        """Ids of banned users, in order."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(users.c.id).where(users.c.banned.is_(True)).order_by(users.c.id)
            )
            return [int(user_id) for user_id in rows.scalars()]

    async def known_users(self, limit: int = 100) -> list[tuple[int, int, datetime | None]]:
        """(user id, jobs, last job time) of the users with the most recent jobs first."""
        last = func.max(jobs.c.created_at).label("last")
        query = (
            select(users.c.id, func.count(jobs.c.id), last)
            .select_from(users.outerjoin(jobs, jobs.c.user_id == users.c.id))
            .group_by(users.c.id)
            .order_by(last.desc().nulls_last(), users.c.id)
            .limit(limit)
        )
        async with self.db.read() as conn:
            return [(int(u), int(n), at) for u, n, at in (await conn.execute(query)).all()]
