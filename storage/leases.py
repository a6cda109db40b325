"""The worker's lease life: claim, heartbeat, progress, finish, fail, release, cancel, reap.

Workers hold a job through a lease (owner + expiry) and every worker-side change is a
compare-and-set on the owner, so a worker whose lease was reaped and re-claimed elsewhere can no
longer change the job (``LeaseLost``).

A cancel requested while a job runs always wins if it commits before the job's last write:
finishing, failing, giving back and reaping such a job all end it cancelled with its
reservation refunded (the user was told "refunded"), and claims skip it. A cancel that comes
after the job succeeded is refused (``NotCancellable``), so what the user is told always holds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage._claim import CLAIM_SLACK, claim_statement
from storage._jobsql import finish_cancelled, held, lease_lost, requeue, returning
from storage._ledger import refund_job
from storage._queue_base import QueueBase, _check_worker, _stopped_running
from storage.contract import Job, StoredImage
from storage.db import DELIVERIES_CHANNEL, JOBS_CHANNEL, Tx
from storage.errors import InvalidValue, JobNotFound, NotCancellable, NotJobOwner
from storage.routing import serves
from storage.tables import FINISHED_STATUSES, jobs, workers
from storage.tables import images as images_table

MAX_PREVIEW_BYTES = 512 * 1024
MAX_ERROR_CHARS = 2000
_SHA256 = re.compile(r"[0-9a-f]{64}")


class Leases(QueueBase):
    """Claim jobs and carry them through their lease to an end."""

    async def claim(
        self, worker_id: str, limit: int = 1, capabilities: Mapping[str, Any] | None = None
    ) -> list[Job]:
        """Lease up to ``limit`` queued jobs: fast before relax, users interleaved, oldest first.

        Users already running their maximum number of jobs are skipped. With ``capabilities`` (what
        the worker registers) only jobs it has everything for are taken (``storage.routing``).
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
        routed = capabilities is not None
        if routed:
            params["serves"] = json.dumps(serves(capabilities))
        if self.db.dialect == "postgresql":
            # The claim is one statement and its own transaction: one round trip.
            async with self.db.autocommit() as conn:
                rows = await conn.execute(claim_statement(True, routed), params)
                claimed = [Job.from_row(row) for row in rows.mappings()]
        else:
            async with self.db.write(durable=False) as tx:
                rows = await tx.conn.execute(claim_statement(False, routed), params)
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
        self,
        job_id: int,
        worker_id: str,
        images: Sequence[StoredImage],
        gpu_seconds: float,
        rendered: Mapping[str, Any] | None = None,
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
            job = await _unless_cancelled(
                tx.conn,
                job_id,
                worker_id,
                status="succeeded",
                progress=100,
                lease_expires_at=None,
                gpu_seconds=float(gpu_seconds),
                rendered=dict(rendered) if rendered else None,
                finished_at=now,
            )
            if job is None:
                # The images are not kept: the job ends as the user was told, refunded.
                return await _end_cancelled(
                    tx, job_id, now, "cancelled while finishing", gpu_seconds=float(gpu_seconds)
                )
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
        with the reservation refunded; a job whose cancel was requested ends cancelled."""
        _check_worker(worker_id)
        error = str(error)[:MAX_ERROR_CHARS] or "unknown error"
        now = self.now()
        async with self.db.write() as tx:
            conn = tx.conn
            held = await _held_row(conn, job_id, worker_id)
            if held["cancel_requested"]:
                return await _end_cancelled(tx, job_id, now, f"cancelled; then failed: {error}")
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
        """Give a held job back to the queue without spending an attempt (worker shutdown); a job
        whose cancel was requested ends cancelled instead."""
        _check_worker(worker_id)
        now = self.now()
        async with self.db.write() as tx:
            job = await _unless_cancelled(
                tx.conn,
                job_id,
                worker_id,
                status="queued",
                lease_owner=None,
                lease_expires_at=None,
                attempts=jobs.c.attempts - 1,
                started_at=None,
                progress=0,
                preview=None,
            )
            if job is None:
                return await _end_cancelled(tx, job_id, now, "cancelled while running")
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
        """Take back running jobs whose lease expired: requeued while attempts remain, else
        failed and refunded; cancelled and refunded when their cancel was requested.

        Queued jobs with a cancel requested (left by older versions) are cancelled too. Safe to
        run from any number of processes at once; returns how many jobs it took back.
        """
        now = self.now()
        cancel = jobs.c.cancel_requested.is_(True)
        retry = and_(jobs.c.cancel_requested.is_(False), jobs.c.attempts < jobs.c.max_attempts)
        async with self.db.write() as tx:
            rows = (
                await tx.conn.execute(
                    update(jobs)
                    .where(
                        or_(
                            and_(jobs.c.status == "running", jobs.c.lease_expires_at < now),
                            and_(jobs.c.status == "queued", cancel),
                        )
                    )
                    .values(
                        status=case((cancel, "cancelled"), (retry, "queued"), else_="failed"),
                        error=case(
                            (cancel, "cancelled"),
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
                if status == "queued":
                    tx.notify(JOBS_CHANNEL)
                    continue
                note = "cancelled; its worker stopped" if status == "cancelled" else None
                await refund_job(tx.conn, job_id, now, note or "worker stopped responding")
                _stopped_running(tx)
        return len(rows)


async def _held_row(conn: AsyncConnection, job_id: int, worker_id: str) -> RowMapping:
    """The job's row while ``worker_id`` holds it; LeaseLost when it does not.

    The row stays locked until commit (PostgreSQL: ``FOR UPDATE``; SQLite: ``BEGIN
    IMMEDIATE``), so a cancel either commits before this read or is refused after it.
    """
    query = select(jobs).where(
        jobs.c.id == job_id, jobs.c.status == "running", jobs.c.lease_owner == worker_id
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise await lease_lost(conn, job_id, worker_id)
    return row


async def _unless_cancelled(
    conn: AsyncConnection, job_id: int, worker_id: str, **values: Any
) -> Job | None:
    """Update the held job with ``values`` unless its cancel was requested: the job, or None
    when a cancel was requested; LeaseLost when the worker does not hold it.

    One statement on the usual path. The update locks the row, so a cancel either commits
    before it (the update matches nothing) or waits for this transaction and is refused.
    """
    job = await returning(
        conn, held(job_id, worker_id).where(jobs.c.cancel_requested.is_(False)).values(**values)
    )
    if job is None:
        # Not held any more (LeaseLost), or held with its cancel requested (a request is never
        # taken back, so the row says so still).
        row = await _held_row(conn, job_id, worker_id)
        assert row["cancel_requested"], "a held job the update missed has its cancel requested"
    return job


async def _end_cancelled(tx: Tx, job_id: int, now: datetime, note: str, **values: Any) -> Job:
    """End a job as cancelled with its reservation refunded, in the caller's transaction."""
    job = await returning(tx.conn, finish_cancelled(job_id, now).values(**values))
    assert job is not None, "the caller found the job"
    await refund_job(tx.conn, job_id, now, note[:200])
    _stopped_running(tx)
    return job


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
