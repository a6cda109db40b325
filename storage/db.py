"""The database handle: engine, read/write transactions and wake-ups.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read lock; writes within one process
also take an asyncio lock so they queue fairly instead of spinning in SQLite's busy handler.
PostgreSQL wake-ups use LISTEN/NOTIFY on a dedicated asyncpg connection; SQLite wake-ups are
in-process events. Either way ``wait_for_job`` also returns at its timeout, so polling remains the
fallback (e.g. bot and worker as separate processes on one SQLite file).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storage.errors import InvalidValue

log = logging.getLogger(__name__)

JOBS_CHANNEL = "imagine_jobs"
DELIVERIES_CHANNEL = "imagine_deliveries"
CHANNELS = (JOBS_CHANNEL, DELIVERIES_CHANNEL)
BUSY_TIMEOUT_SECONDS = 30.0


def async_url(url: str) -> URL:
    """The SQLAlchemy URL with its async driver (``sqlite://`` and ``postgresql://`` accepted)."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with a terse message
        raise InvalidValue(f"database URL {url!r} is not a valid URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise InvalidValue(
        f"database URL {parsed.render_as_string()!r} uses {backend!r}; "
        "supported are sqlite:///PATH and postgresql://USER@HOST/DB"
    )


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(str(url.database))


def create_engine(url: str, *, pool_size: int = 5) -> AsyncEngine:
    """An async engine with the pragmas and transaction handling this package relies on.

    At most ``2 * pool_size`` connections per engine; callers beyond that wait their turn,
    which keeps many worker processes within PostgreSQL's connection limit.
    """
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_size=pool_size, max_overflow=pool_size)
    path = sqlite_path(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves instead of the driver's implicit deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


class Tx:
    """A write transaction: its connection plus the wake-ups to send when it commits."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.channels: set[str] = set()

    def notify(self, channel: str) -> None:
        """Wake waiters on ``channel`` once this transaction commits."""
        self.channels.add(channel)


class Database:
    """An open database: transactions for the storage classes, wake-ups for the loops."""

    def __init__(self, engine: AsyncEngine, url: URL) -> None:
        self.engine = engine
        self.url = url
        self.dialect: str = url.get_backend_name()
        self._write_engine = (
            engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.dialect == "sqlite"
            else engine
        )
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._events = {channel: asyncio.Event() for channel in CHANNELS}
        self._listener: asyncpg.Connection | None = None
        self._listener_lock = asyncio.Lock()

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 5) -> Database:
        """Create the engine and check the database answers."""
        engine = create_engine(url, pool_size=pool_size)
        db = cls(engine, async_url(url))
        try:
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
        except BaseException:
            await engine.dispose()
            raise
        return db

    async def close(self) -> None:
        """Close the listener connection and every pooled connection."""
        if self._listener is not None:
            try:
                await self._listener.close()
            except Exception:
                # Closing is best effort (the server may already be gone), but never silent.
                log.warning("could not close the LISTEN connection cleanly", exc_info=True)
            self._listener = None
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot)."""
        async with self.engine.connect() as conn:
            yield conn
            await conn.rollback()

    @contextlib.asynccontextmanager
    async def write(self, *, durable: bool = True) -> AsyncIterator[Tx]:
        """A write transaction: commits on success, rolls back on any exception.

        ``durable=False`` lets PostgreSQL acknowledge the commit before its WAL reaches disk
        (``synchronous_commit off``): for changes that are safe to lose in a database crash,
        such as claims and lease renewals (the job simply runs again).
        """
        if self._write_lock is None:
            async with self._transaction(durable) as tx:
                yield tx
            return
        async with self._write_lock, self._transaction(durable) as tx:
            yield tx

    @contextlib.asynccontextmanager
    async def _transaction(self, durable: bool) -> AsyncIterator[Tx]:
        async with self._write_engine.connect() as conn:
            tx = Tx(conn)
            await conn.begin()
            try:
                if not durable and self.dialect == "postgresql":
                    await conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
                yield tx
                if self.dialect == "postgresql":
                    # Delivered by PostgreSQL at commit, to every listening process.
                    for channel in sorted(tx.channels):
                        await conn.execute(text("SELECT pg_notify(:c, '')"), {"c": channel})
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise
        if self.dialect != "postgresql":
            for channel in tx.channels:
                self._events[channel].set()

    # The timeout is part of the wake-up contract (it is the polling interval), hence ASYNC109.
    async def wait_for_job(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return when a job may be claimable (enqueue, retry, released lease) or at timeout."""
        await self._wait(JOBS_CHANNEL, timeout)

    async def wait_for_delivery(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return when a job may have finished (succeeded, failed, cancelled) or at timeout."""
        await self._wait(DELIVERIES_CHANNEL, timeout)

    async def listen(self) -> bool:
        """Start receiving PostgreSQL notifications (``wait_for_*`` does it on first use).

        Returns True when it connected just now: notifications sent before that were missed.
        """
        if self.dialect != "postgresql":
            return False
        async with self._listener_lock:
            if self._listener is not None and not self._listener.is_closed():
                return False
            dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            conn = await asyncpg.connect(dsn)
            for channel in CHANNELS:
                await conn.add_listener(channel, self._on_notify)
            self._listener = conn
            return True

    def _on_notify(self, _conn: object, _pid: int, channel: str, _payload: object) -> None:
        event_ = self._events.get(channel)
        if event_ is not None:
            event_.set()

    async def _wait(self, channel: str, seconds: float) -> None:
        try:
            if await self.listen():
                # Anything may have happened while we were not listening: let the caller look.
                return
        except (OSError, asyncpg.PostgresError) as exc:
            # Without a listener the timeout below still turns this into polling.
            log.warning("cannot listen for notifications, polling instead: %s", exc)
        waker = self._events[channel]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waker.wait(), seconds)
        waker.clear()
