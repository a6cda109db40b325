"""Quota limits and periods: plain values, no SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from storage.errors import InvalidValue
from storage.tables import PERIODS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The largest values an admin may set (the CLI and the slash commands share them); the columns
# are 32-bit integers on PostgreSQL, and no server needs more.
MAX_IMAGES = 1_000_000
MAX_CONCURRENT = 100
MAX_QUEUED = 1_000
MAX_CAPS = {"max_concurrent": MAX_CONCURRENT, "max_queued": MAX_QUEUED}


class LimitSettings(Protocol):
    """The part of the process settings that holds the server's default limits."""

    @property
    def quota_images(self) -> int: ...
    @property
    def quota_period(self) -> str: ...
    @property
    def max_concurrent_jobs(self) -> int: ...
    @property
    def max_queued_jobs(self) -> int: ...
    @property
    def relax_images_per_day(self) -> int: ...


@dataclass(frozen=True)
class Limits:
    """One set of limits: images per period, running and queued job caps, relax images a day.

    Relax jobs cost no quota; ``relax_images`` caps how many images each user makes in relax
    mode per UTC day, so the GPU time of a user is bounded even when relax is allowed.
    """

    images: int = 200
    period: str = "day"
    max_concurrent: int = 3
    max_queued: int = 10
    relax_images: int = 100

    def __post_init__(self) -> None:
        check_images(self.images)
        check_images(self.relax_images, "relax image limit")
        check_period(self.period)
        check_cap("max_concurrent", self.max_concurrent)
        check_cap("max_queued", self.max_queued)

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> Limits:
        """The server defaults configured in the settings."""
        return cls(
            images=settings.quota_images,
            period=settings.quota_period,
            max_concurrent=settings.max_concurrent_jobs,
            max_queued=settings.max_queued_jobs,
            relax_images=settings.relax_images_per_day,
        )


def check_images(images: int, name: str = "image limit") -> int:
    """``images`` if it is a valid image limit (0 to ``MAX_IMAGES``), else InvalidValue."""
    if isinstance(images, bool) or not isinstance(images, int) or not 0 <= images <= MAX_IMAGES:
        raise InvalidValue(f"{name} must be a whole number from 0 to {MAX_IMAGES}, got {images!r}")
    return images


def check_period(period: str) -> str:
    """``period`` if it is a known period, else InvalidValue."""
    if period not in PERIODS:
        raise InvalidValue(f"quota period must be one of {', '.join(PERIODS)}; got {period!r}")
    return period


def check_cap(name: str, value: int) -> int:
    """``value`` if it is a valid job cap (1 to ``MAX_CAPS[name]``), else InvalidValue."""
    top = MAX_CAPS[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise InvalidValue(f"{name} must be a whole number from 1 to {top}, got {value!r}")
    return value


def period_start(period: str, now: datetime) -> datetime:
    """When the period containing ``now`` began (UTC calendar: day, ISO week, month)."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "total":
        return EPOCH
    raise InvalidValue(f"quota period must be one of {', '.join(PERIODS)}; got {period!r}")


def period_end(period: str, now: datetime) -> datetime | None:
    """When the period containing ``now`` ends (the quota resets), None for ``total``."""
    start = period_start(period, now)
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else (start.replace(month=start.month + 1))
        )
    return None


def describe_period(period: str) -> str:
    """``this day``/``this week``/``this month``/``in total``, for messages."""
    return "in total" if period == "total" else f"this {period}"
