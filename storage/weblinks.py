"""Web logins: one-time nonces of signed links, and dashboard sessions.

The signature itself is checked by the web server; the database only remembers which nonces
were used (so a link works once, across restarts and processes) and which sessions exist (the
cookie carries a random id, the table its SHA-256, so a database dump opens no session).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.errors import InvalidValue
from storage.queue import utcnow
from storage.tables import link_nonces, web_sessions

_NONCE_CHARS = 64
_PURPOSE_CHARS = 32


@dataclass(frozen=True)
class WebSession:
    """A logged-in dashboard session."""

    user_id: int
    csrf: str
    created_at: datetime
    expires_at: datetime


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class WebLogins:
    """Nonces and sessions in the database."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self._clock = clock or utcnow

    async def use_nonce(
        self, nonce: str, *, purpose: str, user_id: int, expires_at: datetime
    ) -> bool:
        """Record that a link's nonce was used; False when it had been used before."""
        if not 1 <= len(nonce) <= _NONCE_CHARS or not 1 <= len(purpose) <= _PURPOSE_CHARS:
            raise InvalidValue("a link nonce is 1-64 characters and its purpose 1-32")
        try:
            async with self.db.write() as tx:
                await tx.conn.execute(
                    link_nonces.insert().values(
                        nonce=nonce,
                        purpose=purpose,
                        user_id=user_id,
                        used_at=self._clock(),
                        expires_at=expires_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def create_session(self, user_id: int, lifetime: timedelta) -> tuple[str, WebSession]:
        """A new session: its id (for the cookie, never stored) and its record."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        session = WebSession(
            user_id=user_id,
            csrf=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + lifetime,
        )
        async with self.db.write() as tx:
            await tx.conn.execute(
                web_sessions.insert().values(
                    id_hash=_hash(session_id),
                    user_id=session.user_id,
                    csrf=session.csrf,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                )
            )
        return session_id, session

    async def session(self, session_id: str) -> WebSession | None:
        """The live session with this id, or None (unknown or expired)."""
        if not session_id or len(session_id) > 200:
            return None
        async with self.db.read() as conn:
            row = (
                (
                    await conn.execute(
                        select(web_sessions).where(web_sessions.c.id_hash == _hash(session_id))
                    )
                )
                .mappings()
                .first()
            )
        if row is None or row["expires_at"] <= self._clock():
            return None
        return WebSession(
            user_id=row["user_id"],
            csrf=row["csrf"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )

    async def end_session(self, session_id: str) -> None:
        """Log out: the session stops working at once."""
        async with self.db.write() as tx:
            await tx.conn.execute(
                delete(web_sessions).where(web_sessions.c.id_hash == _hash(session_id))
            )

    async def forget_expired(self) -> int:
        """Delete expired sessions and nonces of expired links (they can never be used again)."""
        now = self._clock()
        async with self.db.write() as tx:
            sessions = await tx.conn.execute(
                delete(web_sessions).where(web_sessions.c.expires_at <= now)
            )
            nonces = await tx.conn.execute(
                delete(link_nonces).where(link_nonces.c.expires_at <= now)
            )
        return int(sessions.rowcount or 0) + int(nonces.rowcount or 0)
