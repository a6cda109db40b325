"""What every part of the job queue shares: the database, the lease length, limits and clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from storage.contract import MAX_ID
from storage.db import DELIVERIES_CHANNEL, JOBS_CHANNEL, Database, Tx
from storage.errors import InvalidValue
from storage.limits import Limits


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _positive_id(name: str, value: int | None) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID
    ):
        raise InvalidValue(
            f"{name} must be a positive integer id, got {value!r} (at most {MAX_ID})"
        )


def _check_worker(worker_id: str) -> None:
    if not isinstance(worker_id, str) or not 1 <= len(worker_id) <= 128:
        raise InvalidValue(f"worker id must be 1 to 128 characters, got {worker_id!r}")


def _stopped_running(tx: Tx) -> None:
    """Wake-ups for a job that stopped running: its result awaits delivery, and its user has a
    running slot free, so a job that waited for the user's cap, or that a claim skipped while
    this transaction held the user's row, may be claimable now."""
    tx.notify(DELIVERIES_CHANNEL)
    tx.notify(JOBS_CHANNEL)


class QueueBase:
    """The queue's configuration and clock; the per-caller parts of ``JobQueue`` build on it."""

    def __init__(
        self,
        db: Database,
        *,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        limits: Limits | None = None,
        clock: Callable[[], datetime] | None = None,
        delivery_max_attempts: int = 12,
        delivery_retry_seconds: float = 1.0,
    ) -> None:
        if not lease_seconds > 0:
            raise InvalidValue(f"lease_seconds must be more than 0, got {lease_seconds!r}")
        if max_attempts < 1:
            raise InvalidValue(f"max_attempts must be 1 or more, got {max_attempts!r}")
        if delivery_max_attempts < 1:
            raise InvalidValue(
                f"delivery_max_attempts must be 1 or more, got {delivery_max_attempts!r}"
            )
        if not delivery_retry_seconds > 0:
            raise InvalidValue(
                f"delivery_retry_seconds must be more than 0, got {delivery_retry_seconds!r}"
            )
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.delivery_max_attempts = delivery_max_attempts
        self.delivery_retry_seconds = delivery_retry_seconds
        self.limits = limits or Limits()
        self._clock = clock or utcnow

    def now(self) -> datetime:
        """The queue's clock (injectable for tests)."""
        now = self._clock()
        if now.tzinfo is None:
            raise InvalidValue("the queue clock must return timezone-aware datetimes")
        return now
