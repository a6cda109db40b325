"""The job queue: enqueue with quota reservation, fair claims, leases, finish, fail, cancel.

Every state change is one transaction. Workers hold a job through a lease (owner + expiry) and
every worker-side change is a compare-and-set on the owner, so a worker whose lease was reaped
and re-claimed elsewhere can no longer change the job (``LeaseLost``).
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage._claim import CLAIM_SLACK, claim_statement, ranked_queue
from storage._jobsql import (
    finish_cancelled,
    get_job,
    held,
    lease_lost,
    requeue,
    returning,
)
from storage._ledger import (
    check_user_id,
    effective_limits,
    job_counts,
    lock_user,
    refund_job,
    upsert,
    usage,
)
from storage.contract import (
    MAX_SEED,
    ImageRecord,
    Job,
    JobSpec,
    JobStatus,
    SpeedMode,
    StoredImage,
)
from storage.db import DELIVERIES_CHANNEL, JOBS_CHANNEL, Database, Tx
from storage.errors import (
    InvalidValue,
    JobNotFound,
    LimitExceeded,
    NotCancellable,
    NotJobOwner,
    QuotaExceeded,
    UserBanned,
)
from storage.limits import Limits, describe_period, period_end
from storage.tables import (
    FINISHED_STATUSES,
    jobs,
    ledger,
    workers,
)
from storage.tables import images as images_table

PRIORITY = {SpeedMode.TURBO: 2, SpeedMode.FAST: 1, SpeedMode.RELAX: 0}
MAX_JOBS_PER_ENQUEUE = 16
MAX_PREVIEW_BYTES = 512 * 1024
MAX_ERROR_CHARS = 2000
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class WorkerInfo:
    """A registered worker and when it was last heard from."""

    id: str
    host: str
    model: str
    started_at: datetime
    last_seen: datetime


@dataclass(frozen=True)
class QueueStats:
    """Queue depth, running jobs and known workers."""

    queued: int
    running: int
    workers: tuple[WorkerInfo, ...]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _positive_id(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise InvalidValue(f"{name} must be a positive integer id, got {value!r}")


def _check_worker(worker_id: str) -> None:
    if not isinstance(worker_id, str) or not 1 <= len(worker_id) <= 128:
        raise InvalidValue(f"worker id must be 1 to 128 characters, got {worker_id!r}")


class JobQueue:
    """Enqueue, claim and complete jobs; see the module docstring for the guarantees."""

    def __init__(
        self,
        db: Database,
        *,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        limits: Limits | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not lease_seconds > 0:
            raise InvalidValue(f"lease_seconds must be more than 0, got {lease_seconds!r}")
        if max_attempts < 1:
            raise InvalidValue(f"max_attempts must be 1 or more, got {max_attempts!r}")
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.limits = limits or Limits()
        self._clock = clock or utcnow
        # Statements that are a whole transaction by themselves skip BEGIN and COMMIT.
        self._autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")

    def now(self) -> datetime:
        """The queue's clock (injectable for tests)."""
        now = self._clock()
        if now.tzinfo is None:
            raise InvalidValue("the queue clock must return timezone-aware datetimes")
        return now

    # -- producer side -------------------------------------------------------------------------

    async def enqueue(
        self,
        user_id: int,
        specs: Sequence[JobSpec],
        *,
        interaction_id: int | None,
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> list[Job]:
        """Queue the jobs and reserve their quota in one transaction; idempotent per interaction.

        Enqueueing an interaction again returns its existing jobs and reserves nothing more.
        """
        check_user_id(user_id)
        for name, value in (
            ("interaction id", interaction_id),
            ("guild id", guild_id),
            ("channel id", channel_id),
        ):
            _positive_id(name, value)
        specs = list(specs)
        _check_specs(specs)
        try:
            return await self._enqueue(user_id, specs, interaction_id, guild_id, channel_id)
        except IntegrityError:
            # Only a concurrent insert of the same interaction gets here: its jobs now exist.
            if interaction_id is None:
                raise
            return await self._enqueue(user_id, specs, interaction_id, guild_id, channel_id)

    async def _enqueue(
        self,
        user_id: int,
        specs: list[JobSpec],
        interaction_id: int | None,
        guild_id: int | None,
        channel_id: int | None,
    ) -> list[Job]:
        now = self.now()
        async with self.db.write() as tx:
            conn = tx.conn
            banned = await lock_user(conn, user_id, now)
            if interaction_id is not None:
                existing = await self._by_interaction(conn, interaction_id)
                if existing:
                    if existing[0].user_id != user_id:
                        raise InvalidValue(
                            f"interaction {interaction_id} already queued jobs for another user"
                        )
                    return existing
            if banned:
                raise UserBanned("You are banned from generating images here.")
            await _check_parents(conn, specs)
            await self._check_limits(conn, user_id, specs, now)
            created = await self._insert(
                conn, user_id, specs, now, interaction_id, guild_id, channel_id
            )
            tx.notify(JOBS_CHANNEL)
        return created

    async def _check_limits(
        self, conn: AsyncConnection, user_id: int, specs: list[JobSpec], now: datetime
    ) -> None:
        limits, _ = await effective_limits(conn, user_id, self.limits)
        queued = (await job_counts(conn, user_id)).get("queued", 0)
        if queued + len(specs) > limits.max_queued:
            raise LimitExceeded(
                f"You have {queued} jobs waiting and this adds {len(specs)}; at most "
                f"{limits.max_queued} may wait at once. Wait for some to start or cancel them."
            )
        needed = sum(_cost(spec) for spec in specs)
        if needed == 0:
            return
        used = await usage(conn, user_id, limits.period, now)
        allowed = limits.images + used.granted
        if used.used + needed > allowed:
            resets = period_end(limits.period, now)
            when = (
                f"Your quota resets at {resets:%Y-%m-%d %H:%M} UTC."
                if resets
                else "This limit never resets; ask an admin for more."
            )
            raise QuotaExceeded(
                f"Not enough image quota: you have used {used.used} of {allowed} images "
                f"{describe_period(limits.period)} and this needs {needed}. {when}"
            )

    async def _insert(
        self,
        conn: AsyncConnection,
        user_id: int,
        specs: list[JobSpec],
        now: datetime,
        interaction_id: int | None,
        guild_id: int | None,
        channel_id: int | None,
    ) -> list[Job]:
        rows = []
        for position, spec in enumerate(specs):
            seed = spec.request.seed
            if seed is None:
                seed = secrets.randbelow(MAX_SEED + 1)
            request = spec.request.with_seed(seed)
            rows.append(
                {
                    "kind": str(spec.kind),
                    "status": JobStatus.QUEUED.value,
                    "user_id": user_id,
                    "request": request.to_dict(),
                    "seed": seed,
                    "cost": _cost(spec),
                    "guild_id": guild_id,
                    "channel_id": channel_id,
                    "interaction_id": interaction_id,
                    "position": position,
                    "parent_job_id": spec.parent_job_id,
                    "parent_index": spec.parent_index,
                    "strength": spec.strength,
                    "input_images": list(spec.input_images),
                    "priority": PRIORITY[request.mode],
                    "attempts": 0,
                    "max_attempts": self.max_attempts,
                    "progress": 0,
                    "cancel_requested": False,
                    "created_at": now,
                    "prompt_text": spec.prompt_text,
                }
            )
        inserted = await conn.execute(
            jobs.insert().returning(*jobs.c, sort_by_parameter_order=True), rows
        )
        created = [Job.from_row(row) for row in inserted.mappings()]
        reservations = [
            {
                "user_id": user_id,
                "job_id": job.id,
                "kind": "reserve",
                "amount": job.cost,
                "period_at": now,
                "created_at": now,
            }
            for job in created
            if job.cost > 0
        ]
        if reservations:
            await conn.execute(ledger.insert(), reservations)
        return created

    async def _by_interaction(self, conn: AsyncConnection, interaction_id: int) -> list[Job]:
        rows = await conn.execute(
            select(jobs).where(jobs.c.interaction_id == interaction_id).order_by(jobs.c.position)
        )
        return [Job.from_row(row) for row in rows.mappings()]

    async def set_message_id(self, job_id: int, message_id: int) -> Job:
        """Remember the Discord message that shows the job."""
        _positive_id("message id", message_id)
        async with self.db.write() as tx:
            row = await returning(
                tx.conn, update(jobs).where(jobs.c.id == job_id).values(message_id=message_id)
            )
        if row is None:
            raise JobNotFound(f"There is no job {job_id}.")
        return row

    # -- worker side ---------------------------------------------------------------------------

    async def claim(self, worker_id: str, limit: int = 1) -> list[Job]:
        """Lease up to ``limit`` queued jobs: fast before relax, users interleaved, oldest first.

        Users already running their maximum number of jobs are skipped.
        """
        _check_worker(worker_id)
        if not 1 <= limit <= 100:
            raise InvalidValue(f"claim limit must be between 1 and 100, got {limit!r}")
        now = self.now()
        params = {
            "worker_id": worker_id,
            "now": now,
            "expires": now + self.lease,
            "limit": limit,
            "candidates": limit + CLAIM_SLACK,
            "default_cap": self.limits.max_concurrent,
        }
        if self.db.dialect == "postgresql":
            # The claim is one statement and its own transaction: one round trip.
            async with self._autocommit.connect() as conn:
                rows = await conn.execute(claim_statement(True), params)
                claimed = [Job.from_row(row) for row in rows.mappings()]
        else:
            async with self.db.write(durable=False) as tx:
                rows = await tx.conn.execute(claim_statement(False), params)
                claimed = [Job.from_row(row) for row in rows.mappings()]
        claimed.sort(key=lambda job: (-job.priority, job.id))
        return claimed

    async def heartbeat(self, job_id: int, worker_id: str) -> Job:
        """Renew the lease; the returned job says whether a cancel was requested."""
        return await self._renew(job_id, worker_id, {})

    async def report_progress(
        self, job_id: int, worker_id: str, percent: int, preview: bytes | None = None
    ) -> Job:
        """Record progress (0-100) and optionally a small preview image; renews the lease."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise InvalidValue(f"progress must be a whole percent 0 to 100, got {percent!r}")
        values: dict[str, Any] = {"progress": percent}
        if preview is not None:
            if len(preview) > MAX_PREVIEW_BYTES:
                raise InvalidValue(
                    f"preview is {len(preview)} bytes; at most {MAX_PREVIEW_BYTES} are stored"
                )
            values["preview"] = bytes(preview)
        return await self._renew(job_id, worker_id, values)

    async def _renew(self, job_id: int, worker_id: str, values: dict[str, Any]) -> Job:
        _check_worker(worker_id)
        now = self.now()
        async with self.db.write(durable=False) as tx:
            job = await returning(
                tx.conn,
                held(job_id, worker_id).values(lease_expires_at=now + self.lease, **values),
            )
            if job is None:
                raise await lease_lost(tx.conn, job_id, worker_id)
            await tx.conn.execute(
                update(workers).where(workers.c.id == worker_id).values(last_seen=now)
            )
        return job

    async def finish(
        self, job_id: int, worker_id: str, images: Sequence[StoredImage], gpu_seconds: float
    ) -> Job:
        """Mark the job succeeded with its stored images; only the lease holder may."""
        _check_worker(worker_id)
        _check_images(images)
        if not (isinstance(gpu_seconds, int | float) and math.isfinite(gpu_seconds)) or (
            gpu_seconds < 0
        ):
            raise InvalidValue(
                f"gpu_seconds must be a finite number 0 or more, got {gpu_seconds!r}"
            )
        now = self.now()
        async with self.db.write() as tx:
            job = await returning(
                tx.conn,
                held(job_id, worker_id).values(
                    status="succeeded",
                    progress=100,
                    lease_expires_at=None,
                    gpu_seconds=float(gpu_seconds),
                    finished_at=now,
                ),
            )
            if job is None:
                raise await lease_lost(tx.conn, job_id, worker_id)
            if images:
                await tx.conn.execute(
                    images_table.insert(),
                    [
                        {
                            "job_id": job_id,
                            "index": image.index,
                            "sha256": image.sha256,
                            "width": image.width,
                            "height": image.height,
                            "seed": image.seed,
                            "size_bytes": image.size_bytes,
                            "path": image.path,
                            "created_at": now,
                        }
                        for image in images
                    ],
                )
            _stopped_running(tx)
        return job

    async def fail(self, job_id: int, worker_id: str, error: str, *, retry: bool = True) -> Job:
        """Record an error: back to the queue while attempts remain (and ``retry``), else failed
        with the reservation refunded."""
        _check_worker(worker_id)
        error = str(error)[:MAX_ERROR_CHARS] or "unknown error"
        now = self.now()
        async with self.db.write() as tx:
            conn = tx.conn
            query = select(jobs).where(
                jobs.c.id == job_id, jobs.c.status == "running", jobs.c.lease_owner == worker_id
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            held = (await conn.execute(query)).mappings().first()
            if held is None:
                raise await lease_lost(conn, job_id, worker_id)
            if retry and held["attempts"] < held["max_attempts"]:
                job = await returning(conn, requeue(job_id).values(error=error))
                tx.notify(JOBS_CHANNEL)
            else:
                job = await returning(
                    conn,
                    update(jobs)
                    .where(jobs.c.id == job_id)
                    .values(status="failed", error=error, finished_at=now, lease_expires_at=None),
                )
                await refund_job(conn, job_id, now, f"failed: {error[:200]}")
                _stopped_running(tx)
        assert job is not None
        return job

    async def release(self, job_id: int, worker_id: str) -> Job:
        """Give a held job back to the queue without spending an attempt (worker shutdown)."""
        _check_worker(worker_id)
        async with self.db.write() as tx:
            job = await returning(
                tx.conn,
                held(job_id, worker_id).values(
                    status="queued",
                    lease_owner=None,
                    lease_expires_at=None,
                    attempts=jobs.c.attempts - 1,
                    started_at=None,
                    progress=0,
                    preview=None,
                ),
            )
            if job is None:
                raise await lease_lost(tx.conn, job_id, worker_id)
            tx.notify(JOBS_CHANNEL)
        return job

    async def request_cancel(self, job_id: int, user_id: int | None = None) -> Job:
        """Cancel a job: a queued one at once (refunded), a running one at the worker's next step.

        With ``user_id``, only that user's own jobs may be cancelled.
        """
        now = self.now()
        async with self.db.write() as tx:
            conn = tx.conn
            query = select(jobs.c.user_id, jobs.c.status).where(jobs.c.id == job_id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = (await conn.execute(query)).first()
            if row is None:
                raise JobNotFound(f"There is no job {job_id}.")
            if user_id is not None and row.user_id != user_id:
                raise NotJobOwner(
                    f"Job {job_id} belongs to another user; you can only cancel yours."
                )
            if row.status in FINISHED_STATUSES:
                raise NotCancellable(
                    f"Job {job_id} already {row.status}; there is nothing to cancel."
                )
            if row.status == "queued":
                job = await returning(conn, finish_cancelled(job_id, now))
                await refund_job(conn, job_id, now, "cancelled while queued")
                tx.notify(DELIVERIES_CHANNEL)
            else:
                job = await returning(
                    conn, update(jobs).where(jobs.c.id == job_id).values(cancel_requested=True)
                )
        assert job is not None
        return job

    async def mark_cancelled(self, job_id: int, worker_id: str) -> Job:
        """The worker stopped a job whose cancel was requested: cancelled and refunded."""
        _check_worker(worker_id)
        now = self.now()
        async with self.db.write() as tx:
            job = await returning(
                tx.conn,
                finish_cancelled(job_id, now).where(
                    jobs.c.status == "running", jobs.c.lease_owner == worker_id
                ),
            )
            if job is None:
                raise await lease_lost(tx.conn, job_id, worker_id)
            await refund_job(tx.conn, job_id, now, "cancelled while running")
            _stopped_running(tx)
        return job

    async def reap_expired(self) -> int:
        """Requeue (or fail and refund, when out of attempts) running jobs whose lease expired.

        Safe to run from any number of processes at once; returns how many jobs it took back.
        """
        now = self.now()
        retry = jobs.c.attempts < jobs.c.max_attempts
        async with self.db.write() as tx:
            rows = (
                await tx.conn.execute(
                    update(jobs)
                    .where(jobs.c.status == "running", jobs.c.lease_expires_at < now)
                    .values(
                        status=case((retry, "queued"), else_="failed"),
                        error=case(
                            (retry, "the worker stopped responding; retrying"),
                            else_="the worker stopped responding and no attempts are left",
                        ),
                        finished_at=case((retry, None), else_=now),
                        lease_owner=None,
                        lease_expires_at=None,
                        started_at=case((retry, None), else_=jobs.c.started_at),
                        progress=case((retry, 0), else_=jobs.c.progress),
                    )
                    .returning(jobs.c.id, jobs.c.status)
                )
            ).all()
            for job_id, status in rows:
                if status == "failed":
                    await refund_job(tx.conn, job_id, now, "worker stopped responding")
                    _stopped_running(tx)
                else:
                    tx.notify(JOBS_CHANNEL)
        return len(rows)

    # -- delivery outbox -----------------------------------------------------------------------

    async def pending_deliveries(self, limit: int = 20) -> list[Job]:
        """Finished jobs (succeeded, failed or cancelled) whose result was not delivered yet."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(jobs)
                .where(jobs.c.status.in_(FINISHED_STATUSES), jobs.c.delivered_at.is_(None))
                .order_by(jobs.c.finished_at, jobs.c.id)
                .limit(limit)
            )
            return [Job.from_row(row) for row in rows.mappings()]

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
        return [
            ImageRecord(
                job_id=row["job_id"],
                index=row["index"],
                sha256=row["sha256"],
                width=row["width"],
                height=row["height"],
                seed=row["seed"],
                size_bytes=row["size_bytes"],
                path=row["path"],
            )
            for row in rows
        ]

    async def running_jobs(self) -> list[Job]:
        """Every running job, oldest first."""
        return await self._select(jobs.c.status == "running")

    async def user_jobs(self, user_id: int, statuses: Iterable[JobStatus]) -> list[Job]:
        """The user's jobs in the given statuses, oldest first."""
        wanted = [JobStatus(status).value for status in statuses]
        return await self._select(and_(jobs.c.user_id == user_id, jobs.c.status.in_(wanted)))

    async def _select(self, where: Any) -> list[Job]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(jobs).where(where).order_by(jobs.c.id))
            return [Job.from_row(row) for row in rows.mappings()]

    async def queue_position(self, job_id: int) -> int | None:
        """1 for the job claimed next, and so on (fair order); None when it is not queued."""
        ranked = ranked_queue().subquery("ranked")
        ordered = select(
            ranked.c.id,
            func.row_number()
            .over(order_by=(ranked.c.priority.desc(), ranked.c.turn, ranked.c.id))
            .label("position"),
        ).subquery("ordered")
        async with self.db.read() as conn:
            position = (
                await conn.execute(select(ordered.c.position).where(ordered.c.id == job_id))
            ).scalar_one_or_none()
            if position is None:
                await get_job(conn, job_id)
                return None
        return int(position)

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

    async def register_worker(self, worker_id: str, host: str, model: str) -> None:
        """Record a worker (or refresh it) and its last-seen time."""
        _check_worker(worker_id)
        now = self.now()
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
                },
            )
            await tx.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["id"],
                    set_={"host": host, "model": model, "last_seen": now},
                )
            )


def _stopped_running(tx: Tx) -> None:
    """Wake-ups for a job that stopped running: its result awaits delivery, and its user has a
    running slot free, so a job that waited for the user's cap, or that a claim skipped while
    this transaction held the user's row, may be claimable now."""
    tx.notify(DELIVERIES_CHANNEL)
    tx.notify(JOBS_CHANNEL)


def _cost(spec: JobSpec) -> int:
    """Relax mode costs nothing; its cost is recorded as 0."""
    return 0 if spec.request.mode is SpeedMode.RELAX else spec.cost


def _check_specs(specs: list[JobSpec]) -> None:
    if not specs:
        raise InvalidValue("nothing to enqueue: give at least one job")
    if len(specs) > MAX_JOBS_PER_ENQUEUE:
        raise InvalidValue(
            f"{len(specs)} jobs in one command; at most {MAX_JOBS_PER_ENQUEUE} are allowed"
        )
    for spec in specs:
        if isinstance(spec.cost, bool) or not isinstance(spec.cost, int) or spec.cost < 0:
            raise InvalidValue(
                f"job cost must be a whole number of images 0 or more, got {spec.cost!r}"
            )
        seed = spec.request.seed
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise InvalidValue(f"seed must be between 0 and {MAX_SEED}, got {seed!r}")
        _positive_id("parent job id", spec.parent_job_id)


async def _check_parents(conn: AsyncConnection, specs: list[JobSpec]) -> None:
    wanted = {spec.parent_job_id for spec in specs if spec.parent_job_id is not None}
    if not wanted:
        return
    found = set((await conn.execute(select(jobs.c.id).where(jobs.c.id.in_(wanted)))).scalars())
    missing = sorted(wanted - found)
    if missing:
        raise JobNotFound(f"There is no job {missing[0]} to start from.")


def _check_images(stored: Sequence[StoredImage]) -> None:
    seen: set[int] = set()
    for image in stored:
        if not -1 <= image.index <= 15 or image.index in seen:
            raise InvalidValue(
                f"image index {image.index!r} is repeated or outside -1 (grid) to 15"
            )
        seen.add(image.index)
        if not _SHA256.fullmatch(image.sha256):
            raise InvalidValue(f"sha256 must be 64 lowercase hex digits, got {image.sha256!r}")
        if image.width <= 0 or image.height <= 0 or image.size_bytes < 0:
            raise InvalidValue(
                f"image {image.index}: width and height must be positive and size_bytes 0 or "
                f"more, got {image.width}x{image.height}, {image.size_bytes} bytes"
            )
