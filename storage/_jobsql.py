"""Small SQL pieces the queue shares: compare-and-set updates and error lookups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.contract import Job
from storage.errors import JobNotFound, LeaseLost
from storage.tables import jobs


def held(job_id: int, worker_id: str) -> Any:
    """UPDATE of a job only while ``worker_id`` holds it."""
    return update(jobs).where(
        jobs.c.id == job_id, jobs.c.status == "running", jobs.c.lease_owner == worker_id
    )


def requeue(job_id: int) -> Any:
    """UPDATE putting a job back in the queue with its lease cleared."""
    return (
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            status="queued",
            lease_owner=None,
            lease_expires_at=None,
            started_at=None,
            progress=0,
            preview=None,
        )
    )


def finish_cancelled(job_id: int, now: datetime) -> Any:
    """UPDATE marking a job cancelled now."""
    return (
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            status="cancelled",
            error="cancelled",
            finished_at=now,
            lease_expires_at=None,
            cancel_requested=True,
        )
    )


async def returning(conn: AsyncConnection, stmt: Any) -> Job | None:
    """Run an UPDATE and return the changed job, or None when no row matched."""
    row = (await conn.execute(stmt.returning(*jobs.c))).mappings().first()
    return None if row is None else Job.from_row(row)


async def get_job(conn: AsyncConnection, job_id: int) -> Job:
    """One job by id, or JobNotFound."""
    row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().first()
    if row is None:
        raise JobNotFound(f"There is no job {job_id}.")
    return Job.from_row(row)


async def lease_lost(conn: AsyncConnection, job_id: int, worker_id: str) -> Exception:
    """The error for a worker-side change that matched no held job."""
    row = (
        await conn.execute(select(jobs.c.status, jobs.c.lease_owner).where(jobs.c.id == job_id))
    ).first()
    if row is None:
        return JobNotFound(f"There is no job {job_id}.")
    holder = f", held by {row.lease_owner}" if row.status == "running" else ""
    return LeaseLost(
        f"Worker {worker_id} no longer holds job {job_id}: it is {row.status}{holder}."
    )
