"""The audit log: every admin change, with who made it and through which door.

Changes write their audit row in the same transaction as the change itself (``record``), so a
change is never stored without its record, nor a record without its change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import Database
from storage.errors import InvalidValue
from storage.tables import audit_log

VIA = ("discord", "dashboard", "cli")
OPERATOR = 0  # the admin id of someone at the command line, who has no Discord id


@dataclass(frozen=True)
class Actor:
    """Who makes a change: a Discord user id (``OPERATOR`` for the shell) and the door used."""

    admin_id: int
    via: str

    def __post_init__(self) -> None:
        if self.via not in VIA:
            raise InvalidValue(f"an audit source is one of {', '.join(VIA)}; got {self.via!r}")
        if isinstance(self.admin_id, bool) or not isinstance(self.admin_id, int):
            raise InvalidValue(f"an admin id is a whole number, got {self.admin_id!r}")
        if self.admin_id < 0:
            raise InvalidValue(f"an admin id is 0 or a Discord id, got {self.admin_id!r}")


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change."""

    id: int
    admin_id: int
    via: str
    action: str
    target: str | None
    detail: Mapping[str, Any] | None
    created_at: datetime


async def record(
    conn: AsyncConnection,
    actor: Actor | None,
    action: str,
    target: object,
    now: datetime,
    **detail: Any,
) -> None:
    """Append an audit row in the caller's transaction (nothing when ``actor`` is None)."""
    if actor is None:
        return
    await conn.execute(
        audit_log.insert().values(
            admin_id=actor.admin_id,
            via=actor.via,
            action=action,
            target=None if target is None else str(target)[:200],
            detail={k: v for k, v in detail.items() if v is not None} or None,
            created_at=now,
        )
    )


class AuditLog:
    """Reads of the audit log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def recent(self, limit: int = 100, *, target: str | None = None) -> list[AuditEntry]:
        """The newest entries first (optionally only those about ``target``)."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, min(limit, 1000)))
        if target is not None:
            query = query.where(audit_log.c.target == target)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [AuditEntry(**dict(row)) for row in rows]
