"""Admission, the bot's side of the queue: limits, quota reservation, insert, message ids.

Enqueueing is one transaction: the user row is locked, bans and limits are checked, the jobs are
inserted and their quota reserved, or nothing is written.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage._jobsql import finish_cancelled, get_job, returning
from storage._ledger import (
    check_user_id,
    effective_limits,
    job_counts,
    lock_user,
    refund_job,
    relax_usage,
    usage,
)
from storage._queue_base import QueueBase, _positive_id
from storage.contract import MAX_SEED, Job, JobKind, JobSpec, JobStatus, SpeedMode
from storage.db import DELIVERIES_CHANNEL, JOBS_CHANNEL
from storage.edits import check_edit
from storage.errors import InvalidValue, JobNotFound, LimitExceeded, QuotaExceeded, UserBanned
from storage.limits import describe_period, period_end
from storage.routing import needs
from storage.tables import jobs, ledger, users

BANNED = "You are banned from generating images here."
PRIORITY = {SpeedMode.TURBO: 2, SpeedMode.FAST: 1, SpeedMode.DRAFT: 1, SpeedMode.RELAX: 0}
MAX_JOBS_PER_ENQUEUE = 16


class Admission(QueueBase):
    """Queue jobs with their quota reserved, and remember the message that shows them."""

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

    async def check_admission(
        self, user_id: int, specs: Sequence[JobSpec], *, interaction_id: int | None = None
    ) -> None:
        """Raise what ``enqueue`` would for a ban, a full queue or quota, writing nothing.

        For work worth skipping when the answer is no (downloading image prompts). It reads a
        snapshot; ``enqueue`` still decides. An interaction that already queued its jobs passes.
        """
        check_user_id(user_id)
        specs = list(specs)
        _check_specs(specs)
        async with self.db.read() as conn:
            if interaction_id is not None and await self._by_interaction(conn, interaction_id):
                return
            row = await conn.execute(select(users.c.banned).where(users.c.id == user_id))
            if row.scalar_one_or_none():
                raise UserBanned(BANNED)
            await self._check_limits(conn, user_id, specs, self.now())

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
                raise UserBanned(BANNED)
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
        await _check_relax(conn, user_id, specs, limits.relax_images, now)
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
                    "needs": needs(request, spec.kind),
                    "seed": seed,
                    "cost": _cost(spec),
                    "relax_images": spec.cost if request.mode is SpeedMode.RELAX else 0,
                    "guild_id": guild_id,
                    "channel_id": channel_id,
                    "interaction_id": interaction_id,
                    "position": position,
                    "parent_job_id": spec.parent_job_id,
                    "parent_index": spec.parent_index,
                    "strength": spec.strength,
                    "input_images": list(spec.input_images),
                    "reference_images": spec.reference_images(),
                    "edit": spec.edit.to_dict() if spec.edit is not None else None,
                    "prompt_text": spec.prompt_text,
                    "priority": PRIORITY[request.mode],
                    "attempts": 0,
                    "max_attempts": self.max_attempts,
                    "progress": 0,
                    "cancel_requested": False,
                    "created_at": now,
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

    async def cancel_unposted(self, job_ids: Sequence[int], reason: str) -> list[Job]:
        """The bot could not post these jobs' messages: cancel them with a refund, in one
        transaction, and take them out of the delivery outbox (posting there cannot work).

        A queued job ends at once; a running one at the worker's next step (its cancel wins
        over a finish, see ``storage.leases``).
        """
        now = self.now()
        reason = str(reason)[:500] or "the bot cannot post in the channel"
        out = []
        async with self.db.write() as tx:
            conn = tx.conn
            for job_id in sorted(set(job_ids)):
                query = select(jobs.c.status).where(jobs.c.id == job_id)
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update()
                status = (await conn.execute(query)).scalar_one_or_none()
                if status is None:
                    raise JobNotFound(f"There is no job {job_id}.")
                gone = {"undeliverable_at": now, "delivery_error": f"undeliverable: {reason}"}
                if status == JobStatus.QUEUED.value:
                    await conn.execute(finish_cancelled(job_id, now).values(**gone))
                    await refund_job(conn, job_id, now, f"not posted: {reason}"[:200])
                    tx.notify(DELIVERIES_CHANNEL)
                elif status == JobStatus.RUNNING.value:
                    stmt = update(jobs).where(jobs.c.id == job_id)
                    await conn.execute(stmt.values(cancel_requested=True, **gone))
                else:
                    # Finished before the post failed: nothing left to cancel or post.
                    await conn.execute(
                        update(jobs)
                        .where(jobs.c.id == job_id, jobs.c.delivered_at.is_(None))
                        .values(**gone)
                    )
                out.append(await get_job(conn, job_id))
        return out


def _cost(spec: JobSpec) -> int:
    """Relax mode costs nothing; its cost is recorded as 0."""
    return 0 if spec.request.mode is SpeedMode.RELAX else spec.cost


async def _check_relax(
    conn: AsyncConnection, user_id: int, specs: list[JobSpec], cap: int, now: datetime
) -> None:
    needed = sum(spec.cost for spec in specs if spec.request.mode is SpeedMode.RELAX)
    if needed == 0:
        return
    used = await relax_usage(conn, user_id, now)
    if used + needed > cap:
        resets = period_end("day", now)
        raise QuotaExceeded(
            f"Relax mode is limited to {cap} images a day: you have made {used} today and this "
            f"needs {needed}. It resets at {resets:%Y-%m-%d %H:%M} UTC; fast mode uses your "
            "image quota instead."
        )


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
        edits = spec.kind in (JobKind.OUTPAINT, JobKind.INPAINT)
        if edits != (spec.edit is not None):
            raise InvalidValue(f"a {spec.kind} job {'needs' if edits else 'takes no'} edit")
        if spec.edit is not None:
            check_edit(spec.edit)


async def _check_parents(conn: AsyncConnection, specs: list[JobSpec]) -> None:
    wanted = {spec.parent_job_id for spec in specs if spec.parent_job_id is not None}
    if not wanted:
        return
    found = set((await conn.execute(select(jobs.c.id).where(jobs.c.id.in_(wanted)))).scalars())
    missing = sorted(wanted - found)
    if missing:
        raise JobNotFound(f"There is no job {missing[0]} to start from.")
