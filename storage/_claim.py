"""The claim query: fair order over the queue, running caps, and locking.

A job's ``place`` is its position in its user's line (priority, then oldest); its ``turn`` is that
place plus the user's running jobs (``users.running``). Claiming by (priority, turn, then the
user served longest ago: ``users.last_claimed_at``, never-served first, then id) interleaves users
round-robin, each user's oldest job first, and fast before relax; a job whose turn exceeds the
user's running cap waits.

On PostgreSQL the claim is one statement in its own transaction: it ranks the queued jobs (read
from the partial index ``ix_jobs_queued``), locks a few candidates and their users with
``SKIP LOCKED``, checks the cap again against the locked user rows, leases the jobs and returns
them. Locking a user row that changed since the statement's snapshot makes PostgreSQL re-read it,
so the cap check sees every claim and finish committed before the lock; while the lock is held
nobody can change the counter. The ``jobs`` triggers then count the claimed jobs into
``users.running`` in the same transaction.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Text,
    bindparam,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from storage.contract import JobStatus
from storage.tables import UTCDateTime, jobs, server_limits, user_limits, users

# Candidates looked at beyond the claim limit, for rows other claimers have locked right now.
CLAIM_SLACK = 64

# A literal, not a bind parameter: cached plans must see it to use the partial index.
IS_QUEUED = jobs.c.status == literal_column("'queued'")


def running_cap() -> Any:
    """SQL for a user's running-job cap: their own, else the admins', else the settings'
    (bind parameter ``default_cap``). Needs ``user_limits`` in the FROM clause."""
    server = select(server_limits.c.max_concurrent).where(server_limits.c.id == 1)
    return func.coalesce(
        user_limits.c.max_concurrent, server.scalar_subquery(), bindparam("default_cap")
    )


def served_by(postgresql: bool) -> Any:
    """SQL that is true for a job whose ``needs`` are all among the worker's tokens (bind
    parameter ``serves``: a JSON array of text)."""
    if postgresql:
        offered = cast(bindparam("serves", type_=Text), JSONB)
        return or_(jobs.c.needs.is_(None), offered.op("@>")(cast(jobs.c.needs, JSONB)))
    need = func.json_each(jobs.c.needs).table_valued("value").alias("need")
    served = func.json_each(bindparam("serves", type_=Text)).table_valued("value")
    unmet = (
        select(literal(1))
        .select_from(need)
        .where(need.c.value.not_in(select(served.c.value).scalar_subquery()))
    )
    return ~exists(unmet)


def ranked_queue(routing: Any = None) -> Any:
    """Queued jobs (no cancel requested) with their ``place`` in their user's line and their
    ``turn`` (place plus the user's running jobs); with ``routing``, only the jobs it is true
    for, so a user's line is their oldest job this worker can paint first."""
    place = func.row_number().over(
        partition_by=jobs.c.user_id, order_by=(jobs.c.priority.desc(), jobs.c.id)
    )
    # A queued job whose cancel was requested is never run (the reaper cancels it).
    query = select(jobs.c.id, jobs.c.user_id, jobs.c.priority, place.label("place")).where(
        IS_QUEUED, jobs.c.cancel_requested.is_(False)
    )
    if routing is not None:
        query = query.where(routing)
    lines = query.subquery("lines")
    return select(
        lines.c.id,
        lines.c.user_id,
        lines.c.priority,
        lines.c.place,
        (users.c.running + lines.c.place).label("turn"),
        users.c.last_claimed_at.label("served"),
    ).join_from(lines, users, users.c.id == lines.c.user_id)


def fair_order(columns: Any) -> tuple[Any, ...]:
    """ORDER BY of the fair order over a ranked query's ``columns``: priority, turn, the user
    served longest ago (never served first), then the oldest job."""
    return (
        columns.priority.desc(),
        columns.turn,
        columns.served.asc().nulls_first(),
        columns.id,
    )


def _claimable(limit: Any, count: Any, routing: Any) -> Any:
    """The best ``count`` queued jobs that are within their user's cap and among the first
    ``limit`` of their user's line, best first, with the user's ``cap``."""
    ranked = ranked_queue(routing).subquery("ranked")
    cap = running_cap()
    return (
        select(ranked, cap.label("cap"))
        .outerjoin_from(ranked, user_limits, user_limits.c.user_id == ranked.c.user_id)
        .where(ranked.c.place <= limit, ranked.c.turn <= cap)
        .order_by(*fair_order(ranked.c))
        .limit(count)
    )


def _lease() -> dict[str, Any]:
    return {
        "status": JobStatus.RUNNING.value,
        "lease_owner": bindparam("worker_id", type_=String),
        "lease_expires_at": bindparam("expires", type_=UTCDateTime),
        "attempts": jobs.c.attempts + 1,
        "started_at": bindparam("now", type_=UTCDateTime),
        "progress": 0,
        "preview": None,
    }


@functools.cache
def claim_statement(postgresql: bool, routed: bool = False) -> Any:
    """UPDATE ... RETURNING that leases the next ``limit`` claimable jobs to ``worker_id``;
    ``routed``: only jobs whose needs the worker serves (parameter ``serves``).

    Built once; everything varying is a parameter. On SQLite the caller holds the database's
    write lock (``BEGIN IMMEDIATE``), so the ranking is already exact.
    """
    limit = bindparam("limit", type_=Integer)
    routing = served_by(postgresql) if routed else None
    if not postgresql:
        best = _claimable(limit, limit, routing).subquery("best")
        return (
            update(jobs)
            .where(jobs.c.id.in_(select(best.c.id)))
            .values(**_lease())
            .returning(*jobs.c)
        )

    candidates = _claimable(limit, bindparam("candidates", type_=Integer), routing).cte(
        "candidates"
    )
    locked = (
        select(
            jobs.c.id,
            jobs.c.user_id,
            candidates.c.priority,
            candidates.c.turn,
            candidates.c.served,
            users.c.running,
            candidates.c.cap,
        )
        .select_from(
            candidates.join(jobs, jobs.c.id == candidates.c.id).join(
                users, users.c.id == candidates.c.user_id
            )
        )
        # Both conditions are evaluated again on rows that changed since the snapshot: a job
        # another claimer took is skipped, and so is a user that reached their cap meanwhile.
        .where(IS_QUEUED, users.c.running + candidates.c.place <= candidates.c.cap)
        .order_by(*fair_order(candidates.c))
        .limit(limit)
        # NO KEY UPDATE: the user's row stays free for foreign key checks (new jobs, ledger).
        .with_for_update(of=[jobs, users], skip_locked=True, key_share=True)
        .cte("locked")
    )
    # A claim may be lost in a database crash (the job then simply runs again), so its commit
    # need not wait for the disk: SET LOCAL in SQL form, as the statement is its transaction.
    # Joined to every granted job, so it is set whenever the statement writes.
    setting = func.set_config(
        literal_column("'synchronous_commit'"), literal_column("'off'"), literal_column("true")
    )
    no_fsync = select(setting.label("setting")).cte("no_fsync")
    # ``locked.running`` is the user's count as of the lock; the claim takes only as many of
    # that user's jobs as the cap leaves room for.
    nth = func.row_number().over(
        partition_by=locked.c.user_id,
        order_by=fair_order(locked.c),
    )
    numbered = select(locked.c.id, locked.c.running, locked.c.cap, nth.label("nth")).subquery()
    granted = (
        select(numbered.c.id)
        .select_from(numbered.join(no_fsync, true()))
        .where(numbered.c.running + numbered.c.nth <= numbered.c.cap)
        .cte("granted")
    )
    return update(jobs).where(jobs.c.id == granted.c.id).values(**_lease()).returning(*jobs.c)
