"""Writes wait out a locked SQLite file; past the retry budget they fail whole and clearly."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import Database, async_url, sqlite_path
from storage.errors import DatabaseUnavailable
from storage.queue import JobQueue
from storage.users import Users
from tests.storage.helpers import spec

ALICE = 1001


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite file of this test's own."""
    path = tmp_path / "imagine.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def locked(sqlite_url: str) -> AsyncIterator[sqlite3.Connection]:
    """Another connection holding the file's write lock until the test rolls it back."""
    path = sqlite_path(async_url(sqlite_url))
    assert path is not None
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


class _Retries(logging.Handler):
    """Sets ``twice`` once storage has logged two retries of a locked write."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.twice = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "database is locked" in record.getMessage():
            self.count += 1
            if self.count >= 2:
                self.twice.set()


async def test_a_write_waits_for_the_lock_past_the_busy_timeout(
    sqlite_url: str, locked: sqlite3.Connection
) -> None:
    retries = _Retries()
    logging.getLogger("storage.db").addHandler(retries)
    db = await Database.open(sqlite_url, busy_timeout=0.05, retry_seconds=30)
    try:
        queue = JobQueue(db)
        write = asyncio.create_task(queue.enqueue(ALICE, [spec(4)], interaction_id=1))
        await asyncio.wait_for(retries.twice.wait(), 10)  # well past the 50 ms busy timeout
        assert not write.done()
        await asyncio.to_thread(locked.execute, "ROLLBACK")
        [job] = await asyncio.wait_for(write, 10)
        assert [j.id for j in await queue.user_jobs(ALICE, [job.status])] == [job.id]
    finally:
        logging.getLogger("storage.db").removeHandler(retries)
        await db.close()


async def test_past_the_retry_budget_a_write_is_refused_whole_and_clearly(
    sqlite_url: str, locked: sqlite3.Connection
) -> None:
    db = await Database.open(sqlite_url, busy_timeout=0.05, retry_seconds=0.2)
    try:
        users = Users(db)
        with pytest.raises(DatabaseUnavailable) as refused:
            await users.ban(ALICE)
        assert str(refused.value) == (
            "The database is busy right now; please try again in a moment."
        )
        assert refused.value.detail.startswith(
            "the database stayed locked or unreachable for 0.2 s ("
        )
        assert refused.value.detail.endswith("OperationalError: database is locked")
        await asyncio.to_thread(locked.execute, "ROLLBACK")
        assert not await users.is_banned(ALICE)  # nothing of the refused write landed
        await users.ban(ALICE)
        assert await users.is_banned(ALICE)
    finally:
        await db.close()


async def test_an_unreachable_database_is_reported_as_unavailable() -> None:
    with pytest.raises(DatabaseUnavailable) as refused:
        await Database.open("postgresql://postgres@127.0.0.1:1/nothing", retry_seconds=0)
    assert "cannot be read right now" in refused.value.detail


async def test_a_write_cancelled_at_any_point_rolls_back_and_leaves_the_file_unlocked(
    sqlite_url: str,
) -> None:
    """A write task cancelled anywhere (a lease renewal stopped as its job finishes) rolls
    back, and the next write finds the file unlocked while the cancelled task is still
    referenced, as a run loop's own bookkeeping keeps it."""
    db = await Database.open(sqlite_url, retry_seconds=1.0, busy_timeout=0.1)
    reached: list[str] = []

    async def interrupted_write() -> None:
        reached.append("begin")
        async with db.write() as tx:
            reached.append("insert")
            await tx.conn.execute(text("INSERT INTO marks VALUES (1)"))
            reached.append("select")
            await tx.conn.execute(text("SELECT count(*) FROM marks"))
            reached.append("commit")
        reached.append("done")

    try:
        async with db.write() as tx:
            await tx.conn.execute(text("CREATE TABLE marks (x INTEGER)"))
        cancelled: list[asyncio.Task[None]] = []
        committed = 0
        # Cancel after 0, 1, 2... turns of the event loop until the write gets to its end,
        # so the cancel lands at every await of the write in turn; a few sweeps, since where
        # a turn ends inside the driver varies from run to run.
        for _sweep in range(5):
            for turns in itertools.count():
                reached.clear()
                task = asyncio.create_task(interrupted_write())
                for _ in range(turns):
                    await asyncio.sleep(0)
                if reached[-1:] == ["done"]:
                    committed += 1  # the write that got to its end
                    break
                # A cancel that lands in the commit comes after it was sent: that write is in.
                committed += reached[-1:] == ["commit"]
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                cancelled.append(task)
                async with db.write() as tx:  # DatabaseUnavailable if the file stayed locked
                    await tx.conn.execute(text("INSERT INTO marks VALUES (2)"))
        async with db.read() as conn:
            rows = (await conn.execute(text("SELECT x, count(*) FROM marks GROUP BY x"))).all()
        # Every other cancelled write was rolled back whole.
        assert [tuple(row) for row in rows] == [(1, committed), (2, len(cancelled))]
        assert len(cancelled) > 10 and all(task.cancelled() for task in cancelled)
    finally:
        await db.close()
