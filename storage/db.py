"""The database handle: engine, read/write transactions and wake-ups.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read lock; writes within one process
also take an asyncio lock so they queue fairly instead of spinning in SQLite's busy handler.

Every write goes through ``Database.write``, which is the one place that waits out a locked or
unreachable database: taking the SQLite write lock (or a PostgreSQL connection) is retried with
backoff for up to ``retry_seconds``, before the transaction's body runs, so a retry never repeats
work. Only then, or when the connection fails in the middle of a transaction, does the caller
get ``DatabaseUnavailable`` (a ``StorageError``) instead of a driver error. Once ``BEGIN
IMMEDIATE`` succeeds, SQLite in WAL mode cannot report busy again until commit.
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
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storage.errors import DatabaseUnavailable, InvalidValue

log = logging.getLogger(__name__)

JOBS_CHANNEL = "imagine_jobs"
DELIVERIES_CHANNEL = "imagine_deliveries"
CHANNELS = (JOBS_CHANNEL, DELIVERIES_CHANNEL)
# SQLite's own wait for the write lock, per attempt; ``Database.write`` retries beyond it.
BUSY_TIMEOUT_SECONDS = 5.0
# How long a write keeps retrying a locked or unreachable database before it gives up.
RETRY_SECONDS = 60.0
_FIRST_DELAY = 0.05
_MAX_DELAY = 2.0
# Driver errors that mean "locked or unreachable right now", not "this statement is wrong".
TRANSIENT = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    OSError,
    asyncpg.PostgresConnectionError,
)


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


def create_engine(
    url: str, *, pool_size: int = 5, busy_timeout: float = BUSY_TIMEOUT_SECONDS
) -> AsyncEngine:
    """An async engine with the pragmas and transaction handling this package relies on.

    At most ``2 * pool_size`` connections per engine; callers beyond that wait their turn,
    which keeps many worker processes within PostgreSQL's connection limit. ``busy_timeout``
    is how long SQLite itself waits for a lock before reporting the database locked.
    """
    if not busy_timeout > 0:
        raise InvalidValue(f"the busy timeout must be more than 0 seconds, got {busy_timeout!r}")
    parsed = async_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_size=pool_size, max_overflow=pool_size)
    path = sqlite_path(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves instead of the driver's implicit deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={max(1, int(busy_timeout * 1000))}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    @event.listens_for(engine.sync_engine, "handle_error")
    def _keep_cancelled(context: Any) -> None:
        # A task cancelled in the middle of a statement (a lease renewal stopped when its job
        # finishes) would make SQLAlchemy close the connection mid-transaction. SQLite defers
        # such a close while the statement is still referenced (the cancelled task's
        # traceback holds it), and keeps the write lock that long: every later write found the
        # file locked. aiosqlite runs each call to its end on the connection's own thread
        # whatever happens to the awaiting task, so the connection is still sound: keep it,
        # and let the transaction roll back as any failed one does.
        if not isinstance(context.original_exception, Exception):
            context.is_disconnect = False

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

    def __init__(
        self, engine: AsyncEngine, url: URL, *, retry_seconds: float = RETRY_SECONDS
    ) -> None:
        if not retry_seconds >= 0:
            raise InvalidValue(f"retry_seconds must be 0 or more, got {retry_seconds!r}")
        self.engine = engine
        self.url = url
        self.retry_seconds = retry_seconds
        self.dialect: str = url.get_backend_name()
        self._write_engine = (
            engine.execution_options(sqlite_begin="IMMEDIATE")
            if self.dialect == "sqlite"
            else engine
        )
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        self._autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._events = {channel: asyncio.Event() for channel in CHANNELS}
        self._listener: asyncpg.Connection | None = None
        self._listener_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        pool_size: int = 5,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
    ) -> Database:
        """Create the engine and check the database answers."""
        engine = create_engine(url, pool_size=pool_size, busy_timeout=busy_timeout)
        db = cls(engine, async_url(url), retry_seconds=retry_seconds)
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
        """A read-only transaction (a consistent snapshot); DatabaseUnavailable when the
        database cannot be reached."""
        try:
            async with self.engine.connect() as conn:
                yield conn
                await conn.rollback()
        except TRANSIENT as exc:
            raise DatabaseUnavailable(
                f"the database cannot be read right now: {_brief(exc)}"
            ) from exc

    @contextlib.asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection whose each statement is a whole transaction (PostgreSQL only: one round
        trip for a claim); DatabaseUnavailable when the database cannot be reached."""
        if self.dialect != "postgresql":
            raise InvalidValue("autocommit statements are for PostgreSQL; SQLite uses write()")
        try:
            async with self._autocommit_engine.connect() as conn:
                yield conn
        except TRANSIENT as exc:
            raise DatabaseUnavailable(f"the database failed a statement: {_brief(exc)}") from exc

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
        conn = await self._begin()
        try:
            tx = Tx(conn)
            try:
                if not durable and self.dialect == "postgresql":
                    await conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
                yield tx
                if self.dialect == "postgresql":
                    # Delivered by PostgreSQL at commit, to every listening process.
                    for channel in sorted(tx.channels):
                        await conn.execute(text("SELECT pg_notify(:c, '')"), {"c": channel})
                await conn.commit()
            except BaseException as exc:
                await _rollback(conn)
                if isinstance(exc, TRANSIENT):
                    raise DatabaseUnavailable(
                        f"the database failed during a write, which was rolled back: {_brief(exc)}"
                    ) from exc
                raise
        finally:
            await asyncio.shield(conn.close())
        if self.dialect != "postgresql":
            for channel in tx.channels:
                self._events[channel].set()

    async def _begin(self) -> AsyncConnection:
        """A connection with its write transaction begun (on SQLite: holding the write lock).

        While the database is locked or unreachable this is retried with backoff, up to
        ``retry_seconds``; nothing of the caller's has run yet, so retrying is always safe.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_seconds
        delay = _FIRST_DELAY
        attempt = 0
        while True:
            attempt += 1
            conn: AsyncConnection | None = None
            try:
                conn = await self._write_engine.connect()
                await conn.begin()
                return conn
            except TRANSIENT as exc:
                if conn is not None:
                    await _close_quietly(conn)
                left = deadline - loop.time()
                if left <= 0:
                    raise DatabaseUnavailable(
                        f"the database stayed locked or unreachable for {self.retry_seconds:g} s "
                        f"({attempt} attempts): {_brief(exc)}"
                    ) from exc
                log.warning(
                    "database locked or unreachable (%s); write attempt %d, retrying in %.2f s",
                    _brief(exc),
                    attempt,
                    min(delay, left),
                )
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, _MAX_DELAY)
            except BaseException:
                if conn is not None:
                    await _close_quietly(conn)
                raise

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


def _brief(exc: BaseException) -> str:
    """The driver's own message, first line only (SQLAlchemy appends SQL and a help link)."""
    original = getattr(exc, "orig", None) or exc
    text_ = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text_[0] if text_ else ''}".rstrip(": ")


async def _rollback(conn: AsyncConnection) -> None:
    try:
        await conn.rollback()
    except TRANSIENT as exc:
        # The connection is gone, and the transaction with it; closing discards it.
        log.warning("could not roll back on a failed connection: %s", _brief(exc))


async def _close_quietly(conn: AsyncConnection) -> None:
    try:
        await conn.close()
    except TRANSIENT as exc:
        log.warning("could not close a failed database connection: %s", _brief(exc))
