"""Ids that log lines carry (``job_id``, ``user_id``, ``worker_id``), bound per asyncio task.

The bot and the workers bind them where they start work on a job or an interaction; tasks
created inside inherit them (asyncio copies the context). ``ContextFilter`` copies them onto
each log record, so any formatter (the JSON one in ``bot.logging``) can print them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType

FIELDS = ("job_id", "user_id", "worker_id")

_bound: ContextVar[Mapping[str, int | str]] = ContextVar(
    "imagine_log_fields", default=MappingProxyType({})
)


def bind(**fields: int | str | None) -> None:
    """Add ids to the current context (for the rest of this task and tasks it starts)."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"log fields are {', '.join(FIELDS)}; got {', '.join(sorted(unknown))}")
    merged = dict(_bound.get())
    merged.update({k: v for k, v in fields.items() if v is not None})
    _bound.set(merged)


@contextlib.contextmanager
def bound(**fields: int | str | None) -> Iterator[None]:
    """Ids bound for the duration of a block only."""
    token = _bound.set(dict(_bound.get()))
    try:
        bind(**fields)
        yield
    finally:
        _bound.reset(token)


def current() -> Mapping[str, int | str]:
    """The ids bound now."""
    return _bound.get()


class ContextFilter(logging.Filter):
    """Puts the bound ids on each record (ids passed with ``extra=`` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate; never drops a record."""
        for key, value in _bound.get().items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True
