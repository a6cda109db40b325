"""Users: their /settings, bans, and the server's banned words."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update

from storage._ledger import check_user_id, ensure_user, upsert
from storage.audit import Actor, record
from storage.contract import UserSettings
from storage.db import Database
from storage.errors import InvalidValue, UserNotFound
from storage.queue import utcnow
from storage.tables import banned_words, users

MAX_WORD_CHARS = 200


def normalize_word(word: str) -> str:
    """The stored form of a banned word (trimmed, case-folded), or InvalidValue."""
    cleaned = " ".join(str(word).split()).casefold()
    if not cleaned:
        raise InvalidValue("a banned word cannot be empty")
    if len(cleaned) > MAX_WORD_CHARS:
        raise InvalidValue(f"a banned word may have at most {MAX_WORD_CHARS} characters")
    return cleaned


class Users:
    """Per-user settings and bans, and the banned word list."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self._clock = clock or utcnow

    async def get_settings(self, user_id: int) -> UserSettings:
        """The user's settings (defaults for users never seen)."""
        check_user_id(user_id)
        async with self.db.read() as conn:
            row = await conn.execute(select(users.c.settings).where(users.c.id == user_id))
            return UserSettings.from_dict(row.scalar_one_or_none())

    async def update_settings(self, user_id: int, settings: UserSettings) -> UserSettings:
        """Replace the user's settings."""
        check_user_id(user_id)
        now = self._clock()
        data = settings.to_dict()
        async with self.db.write() as tx:
            stmt = upsert(
                tx.conn,
                users,
                {"id": user_id, "settings": data, "created_at": now, "updated_at": now},
            )
            await tx.conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["id"], set_={"settings": data, "updated_at": now}
                )
            )
        return UserSettings.from_dict(data)

    async def ban(self, user_id: int, *, actor: Actor | None = None) -> None:
        """Refuse the user's future jobs (queued and running ones are left alone)."""
        check_user_id(user_id)
        now = self._clock()
        async with self.db.write() as tx:
            await ensure_user(tx.conn, user_id, now)
            await tx.conn.execute(
                update(users).where(users.c.id == user_id).values(banned=True, updated_at=now)
            )
            await record(tx.conn, actor, "user.ban", user_id, now)

    async def unban(self, user_id: int, *, actor: Actor | None = None) -> None:
        """Allow a banned user again."""
        check_user_id(user_id)
        now = self._clock()
        async with self.db.write() as tx:
            done = await tx.conn.execute(
                update(users).where(users.c.id == user_id).values(banned=False, updated_at=now)
            )
            if done.rowcount == 0:
                raise UserNotFound(f"User {user_id} has never used the bot.")
            await record(tx.conn, actor, "user.unban", user_id, now)

    async def is_banned(self, user_id: int) -> bool:
        """Whether the user is banned."""
        check_user_id(user_id)
        async with self.db.read() as conn:
            row = await conn.execute(select(users.c.banned).where(users.c.id == user_id))
            return bool(row.scalar_one_or_none())

    async def banned_words(self) -> list[str]:
        """The banned words, sorted."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(banned_words.c.word).order_by(banned_words.c.word))
            return list(rows.scalars())

    async def add_banned_word(self, word: str, *, actor: Actor | None = None) -> bool:
        """Ban a word; False when it was already banned."""
        cleaned = normalize_word(word)
        now = self._clock()
        async with self.db.write() as tx:
            stmt = upsert(tx.conn, banned_words, {"word": cleaned, "created_at": now})
            done = await tx.conn.execute(stmt.on_conflict_do_nothing(index_elements=["word"]))
            if done.rowcount:
                await record(tx.conn, actor, "word.add", cleaned, now)
            return bool(done.rowcount)

    async def remove_banned_word(self, word: str, *, actor: Actor | None = None) -> bool:
        """Allow a word again; False when it was not banned."""
        cleaned = normalize_word(word)
        async with self.db.write() as tx:
            done = await tx.conn.execute(
                banned_words.delete().where(banned_words.c.word == cleaned)
            )
            if done.rowcount:
                await record(tx.conn, actor, "word.remove", cleaned, self._clock())
            return bool(done.rowcount)
