"""The readers of the queue: the delivery outbox, jobs, images, queue positions, stats, workers.

The outbox is every finished job not yet delivered and not given up. A failed delivery attempt
is recorded on the job (``delivery_failed``): retried with exponential backoff
(``delivery_retry_seconds``, doubling, at most ``MAX_DELIVERY_DELAY``), the next attempt time
kept in the row so backoff survives restarts and the outbox query reads only due jobs; given up
at once on an error no retry can fix (``final``), or after ``delivery_max_attempts``. A given-up
job keeps its outcome in ``delivery_error``; a succeeded one stays charged, as its images exist.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from storage._claim import fair_order, ranked_queue
from storage._jobsql import get_job, returning
from storage._ledger import upsert
from storage._queue_base import QueueBase, _check_worker
from storage.contract import ImageRecord, Job, JobStatus
from storage.errors import InvalidValue
from storage.routing import live, serves, waiting_reason
from storage.tables import FINISHED_STATUSES, jobs, workers
from storage.tables import images as images_table

MAX_DELIVERY_DELAY = 900.0
MAX_DELIVERY_ERROR_CHARS = 500
IN_OUTBOX = and_(
    jobs.c.status.in_(FINISHED_STATUSES),
    jobs.c.delivered_at.is_(None),
    jobs.c.undeliverable_at.is_(None),
)


@dataclass(frozen=True)
class WorkerInfo:
    """A registered worker and when it was last heard from."""

    id: str
    host: str
    model: str
    started_at: datetime
    last_seen: datetime
    capabilities: dict[str, Any] | None = None


@dataclass(frozen=True)
class QueueStats:
    """Queue depth, running jobs and known workers."""

    queued: int
    running: int
    workers: tuple[WorkerInfo, ...]


class Readers(QueueBase):
    """Read the queue's state, and the few bookkeeping writes that go with reading it."""

    async def pending_deliveries(self, limit: int = 20) -> list[Job]:
        """Finished jobs whose result is due for delivery: never tried first, then retries,
        oldest first; jobs waiting out a backoff are left out."""
        now = self.now()
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(jobs)
                .where(
                    IN_OUTBOX,
                    or_(jobs.c.next_delivery_at.is_(None), jobs.c.next_delivery_at <= now),
                )
                .order_by(jobs.c.delivery_attempts, jobs.c.finished_at, jobs.c.id)
                .limit(limit)
            )
            return [Job.from_row(row) for row in rows.mappings()]

    async def delivery_failed(self, job_id: int, error: str, *, final: bool = False) -> Job:
        """Record a failed delivery attempt: due again after a backoff, or given up when
        ``final`` (no retry can help) or out of attempts. A job no longer in the outbox is
        returned unchanged."""
        now = self.now()
        error = str(error)[:MAX_DELIVERY_ERROR_CHARS] or "unknown error"
        async with self.db.write() as tx:
            current = await get_job(tx.conn, job_id)
            if (
                not current.status.finished
                or current.delivered_at is not None
                or current.undeliverable_at is not None
            ):
                return current
            attempts = current.delivery_attempts + 1
            values: dict[str, Any] = {"delivery_attempts": attempts}
            if final or attempts >= self.delivery_max_attempts:
                why = "undeliverable" if final else f"gave up after {attempts} attempts"
                values["delivery_error"] = f"{why}: {error}{_charged_note(current)}"
                values["undeliverable_at"] = now
                values["next_delivery_at"] = None
            else:
                delay = min(self.delivery_retry_seconds * 2 ** (attempts - 1), MAX_DELIVERY_DELAY)
                values["delivery_error"] = error
                values["next_delivery_at"] = now + timedelta(seconds=delay)
            job = await returning(
                tx.conn, update(jobs).where(jobs.c.id == job_id, IN_OUTBOX).values(**values)
            )
            # Delivered meanwhile by another bot process: that outcome stands.
            return job or await get_job(tx.conn, job_id)

    async def mark_delivered(self, job_id: int) -> Job:
        """Record that the result reached Discord (the first time counts)."""
        now = self.now()
        async with self.db.write() as tx:
            job = await returning(
                tx.conn,
                update(jobs)
                .where(
                    jobs.c.id == job_id,
                    jobs.c.status.in_(FINISHED_STATUSES),
                    jobs.c.delivered_at.is_(None),
                )
                .values(delivered_at=now),
            )
            if job is not None:
                return job
            current = await get_job(tx.conn, job_id)
        if not current.status.finished:
            raise InvalidValue(
                f"Job {job_id} is {current.status}; only finished jobs are delivered."
            )
        return current

    # -- reads ---------------------------------------------------------------------------------

    async def get(self, job_id: int) -> Job:
        """One job by id."""
        async with self.db.read() as conn:
            return await get_job(conn, job_id)

    async def images(self, job_id: int) -> list[ImageRecord]:
        """The job's stored images, the grid (index -1) first."""
        async with self.db.read() as conn:
            rows = (
                (
                    await conn.execute(
                        select(images_table)
                        .where(images_table.c.job_id == job_id)
                        .order_by(images_table.c.index)
                    )
                )
                .mappings()
                .all()
            )
            if not rows:
                await get_job(conn, job_id)
        return [ImageRecord.from_row(row) for row in rows]

    async def running_jobs(self) -> list[Job]:
        """Every running job, oldest first."""
        return await self._select(jobs.c.status == "running")

    async def user_jobs(self, user_id: int, statuses: Iterable[JobStatus]) -> list[Job]:
        """The user's jobs in the given statuses, oldest first."""
        wanted = [JobStatus(status).value for status in statuses]
        return await self._select(and_(jobs.c.user_id == user_id, jobs.c.status.in_(wanted)))

    async def interaction_jobs(self, interaction_id: int) -> list[Job]:
        """The jobs an interaction (or another idempotency key) queued, in order."""
        return await self._select(jobs.c.interaction_id == interaction_id)

    async def _select(self, where: Any) -> list[Job]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(jobs).where(where).order_by(jobs.c.id))
            return [Job.from_row(row) for row in rows.mappings()]

    async def queue_position(self, job_id: int) -> int | None:
        """1 for the job claimed next, and so on (fair order); None when it is not queued."""
        ranked = ranked_queue().subquery("ranked")
        ordered = select(
            ranked.c.id,
            func.row_number().over(order_by=fair_order(ranked.c)).label("position"),
        ).subquery("ordered")
        async with self.db.read() as conn:
            position = (
                await conn.execute(select(ordered.c.position).where(ordered.c.id == job_id))
            ).scalar_one_or_none()
            if position is None:
                await get_job(conn, job_id)
                return None
        return int(position)

    async def waiting(
        self, limit: int = 500, *, job_ids: Collection[int] | None = None
    ) -> dict[int, str]:
        """Why queued jobs wait, by job id: those that no worker seen within one lease serves.
        The oldest ``limit`` queued jobs are looked at, or with ``job_ids`` (a user's own, say,
        however far back in the queue) those of them that are queued."""
        now = self.now()
        query = select(jobs.c.id, jobs.c.needs).where(jobs.c.status == "queued")
        if job_ids is not None:
            query = query.where(jobs.c.id.in_(list(job_ids)))
        else:
            query = query.order_by(jobs.c.id).limit(limit)
        async with self.db.read() as conn:
            queued = (await conn.execute(query)).all()
            rows = await conn.execute(select(workers.c.last_seen, workers.c.capabilities))
            served = [
                serves(row.capabilities)
                for row in rows
                if live(row.last_seen, now, self.lease.total_seconds())
            ]
        reasons = {}
        for job_id, wanted in queued:
            reason = waiting_reason(wanted or (), served)
            if reason is not None:
                reasons[job_id] = reason
        return reasons

    async def stats(self) -> QueueStats:
        """Queue depth, running jobs and workers, for ``/admin queue`` and metrics."""
        async with self.db.read() as conn:
            counts: dict[str, int] = dict(
                (
                    await conn.execute(
                        select(jobs.c.status, func.count())
                        .where(jobs.c.status.in_(("queued", "running")))
                        .group_by(jobs.c.status)
                    )
                ).all()
            )
            rows = await conn.execute(select(workers).order_by(workers.c.id))
            known = tuple(WorkerInfo(**row) for row in rows.mappings())
        return QueueStats(
            queued=counts.get("queued", 0), running=counts.get("running", 0), workers=known
        )

    async def register_worker(
        self,
        worker_id: str,
        host: str,
        model: str,
        capabilities: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a worker (or refresh it), what it serves and its last-seen time."""
        _check_worker(worker_id)
        now = self.now()
        served = dict(capabilities) if capabilities is not None else None
        async with self.db.write() as tx:
            stmt = upsert(
                tx.conn,
                workers,
                {
                    "id": worker_id,
                    "host": host,
                    "model": model,
                    "started_at": now,
                    "last_seen": now,
                    "capabilities": served,
                },
            )
            await tx.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["id"],
                    set_={"host": host, "model": model, "last_seen": now, "capabilities": served},
                )
            )


def _charged_note(job: Job) -> str:
    """What happens to the quota of a job whose result never reaches Discord."""
    if job.status is JobStatus.SUCCEEDED and job.cost:
        return f"; its {job.cost} images stay charged (they are stored)"
    return ""
