"""The claim query: fair order over the queue, running caps, and locking.

A job's ``turn`` is its place in its user's line plus the user's running jobs; claiming by
(priority, turn, id) interleaves users, oldest job first, and fast before relax.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Integer, String, bindparam, func, select, update

from storage.contract import JobStatus
from storage.tables import UTCDateTime, jobs, server_limits, user_limits, users

# Candidates looked at beyond the claim limit, for rows other claimers have locked right now.
CLAIM_SLACK = 64


def running_cap() -> Any:
    """SQL for a user's running-job cap: their own, else the admins', else the settings'
    (bind parameter ``default_cap``). Needs ``user_limits`` in the FROM clause."""
    server = select(server_limits.c.max_concurrent).where(server_limits.c.id == 1)
    return func.coalesce(
        user_limits.c.max_concurrent, server.scalar_subquery(), bindparam("default_cap")
    )


def ranked_queue() -> Any:
    """Queued jobs with each one's ``turn``: its place in its user's line plus the user's
    running jobs. Claiming by (priority, turn, id) interleaves users, oldest job first."""
    running = (
        select(jobs.c.user_id, func.count().label("n"))
        .where(jobs.c.status == "running")
        .group_by(jobs.c.user_id)
        .subquery("running")
    )
    rn = func.row_number().over(
        partition_by=jobs.c.user_id, order_by=(jobs.c.priority.desc(), jobs.c.id)
    )
    return (
        select(
            jobs.c.id,
            jobs.c.user_id,
            jobs.c.priority,
            (rn + func.coalesce(running.c.n, 0)).label("turn"),
        )
        .select_from(jobs.outerjoin(running, running.c.user_id == jobs.c.user_id))
        .where(jobs.c.status == "queued")
    )


@functools.cache
def claim_statement(postgresql: bool) -> Any:
    """UPDATE ... RETURNING that leases the next ``limit`` claimable jobs to ``worker_id``.

    Users whose turn would exceed their running cap are left out. The fair order is computed
    once over the queue; only a short list of candidates is then locked (PostgreSQL: skipping
    rows concurrent claimers hold right now). Built once; everything varying is a parameter.
    """
    ranked = ranked_queue().subquery("ranked")
    candidates = (
        select(ranked.c.id, ranked.c.priority, ranked.c.turn)
        .select_from(ranked.outerjoin(user_limits, user_limits.c.user_id == ranked.c.user_id))
        .where(ranked.c.turn <= running_cap())
        .order_by(ranked.c.priority.desc(), ranked.c.turn, ranked.c.id)
        .limit(bindparam("candidates", type_=Integer))
        .cte("candidates")
    )
    picked = (
        select(jobs.c.id)
        .select_from(
            jobs.join(candidates, candidates.c.id == jobs.c.id).join(
                users, users.c.id == jobs.c.user_id
            )
        )
        # status is checked again here: PostgreSQL re-evaluates it on rows that changed after
        # the snapshot, so a job another claimer just took is never taken twice.
        .where(jobs.c.status == "queued")
        .order_by(candidates.c.priority.desc(), candidates.c.turn, candidates.c.id)
        .limit(bindparam("limit", type_=Integer))
    )
    if postgresql:
        # Locking the user too keeps two claimers from both taking one user's last free slot.
        picked = picked.with_for_update(skip_locked=True, of=[jobs, users])
    picked_cte = picked.cte("picked")
    return (
        update(jobs)
        .where(jobs.c.id == picked_cte.c.id)
        .values(
            status=JobStatus.RUNNING.value,
            lease_owner=bindparam("worker_id", type_=String),
            lease_expires_at=bindparam("expires", type_=UTCDateTime),
            attempts=jobs.c.attempts + 1,
            started_at=bindparam("now", type_=UTCDateTime),
            progress=0,
            preview=None,
        )
        .returning(*jobs.c)
    )


# Each user's running cap and running jobs right now (``ids`` bound to the user ids).
RUNNING_AND_CAPS = (
    select(
        users.c.id,
        running_cap(),
        select(func.count())
        .where(jobs.c.user_id == users.c.id, jobs.c.status == "running")
        .scalar_subquery(),
    )
    .select_from(users.outerjoin(user_limits, user_limits.c.user_id == users.c.id))
    .where(users.c.id.in_(bindparam("ids", expanding=True)))
)
