"""The job queue: enqueue with quota reservation, fair claims, leases, finish, fail, cancel.

Every state change is one transaction. Workers hold a job through a lease (owner + expiry) and
every worker-side change is a compare-and-set on the owner, so a worker whose lease was reaped
and re-claimed elsewhere can no longer change the job (``LeaseLost``).

``JobQueue`` is composed of one part per caller: ``storage.admission`` (the bot queues jobs),
``storage.leases`` (a worker carries a job through its lease) and ``storage.readers`` (delivery,
status and stats).
"""

from __future__ import annotations

from storage._queue_base import utcnow
from storage.admission import BANNED, MAX_JOBS_PER_ENQUEUE, PRIORITY, Admission
from storage.leases import MAX_ERROR_CHARS, MAX_PREVIEW_BYTES, Leases
from storage.readers import QueueStats, Readers, WorkerInfo

__all__ = [
    "BANNED",
    "MAX_ERROR_CHARS",
    "MAX_JOBS_PER_ENQUEUE",
    "MAX_PREVIEW_BYTES",
    "PRIORITY",
    "JobQueue",
    "QueueStats",
    "WorkerInfo",
    "utcnow",
]


class JobQueue(Admission, Leases, Readers):
    """Enqueue, claim and complete jobs; see the module docstring for the guarantees."""
