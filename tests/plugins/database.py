"""Pytest fixtures: databases (SQLite and PostgreSQL) migrated to head, and storage services.

``database_url`` runs a test once per database: a fresh SQLite file, and a PostgreSQL database
created once per session (emptied before each test); ``postgres_url`` is a PostgreSQL database
of one test's own. When PostgreSQL is unreachable its tests are skipped, unless the ``CI``
environment variable is set: then they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from storage.db import Database
from storage.images import FileImageStore
from storage.limits import Limits
from storage.migrate import upgrade
from storage.queue import JobQueue
from storage.quotas import Quotas
from storage.tables import metadata
from storage.users import Users

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class FakeClock:
    """A clock that only moves when told to; pass it as ``clock=`` to the storage classes."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward and return the new time."""
        self.current += timedelta(seconds=seconds)
        return self.current


def _postgres_url(database: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _postgres_or_skip() -> None:
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so PostgreSQL tests must run)")
        pytest.skip(message)


def _create_postgres_database(prefix: str) -> str:
    _postgres_or_skip()
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name


def _drop_postgres_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_session_url() -> Iterator[str]:
    """A PostgreSQL database for this test session, migrated to head, dropped at the end."""
    name = _create_postgres_database("imagine_test")
    url = _postgres_url(name)
    try:
        upgrade(url)
        yield url
    finally:
        _drop_postgres_database(name)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test's own, migrated to head, dropped afterwards (for
    tests whose processes outlive a connection: a killed worker, a bot in a subprocess)."""
    name = _create_postgres_database("imagine_own")
    url = _postgres_url(name)
    try:
        upgrade(url)
        yield url
    finally:
        _drop_postgres_database(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once; tests get copies."""
    path = tmp_path_factory.mktemp("sqlite-template") / "imagine.db"
    upgrade(f"sqlite:///{path}")
    return path


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        tables = ", ".join(table.name for table in metadata.sorted_tables)
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database at the newest schema: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "imagine.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_session_url")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all (for migration tests): SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = _create_postgres_database("imagine_empty")
    try:
        yield _postgres_url(name)
    finally:
        _drop_postgres_database(name)


@pytest.fixture
def database_environ(database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for ``Settings.load(environ)`` pointing at ``database_url``."""
    return {"IMAGINE_DATABASE_URL": database_url, "IMAGINE_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def clock() -> FakeClock:
    """A controllable clock starting now."""
    return FakeClock()


@pytest.fixture
def limits() -> Limits:
    """Server default limits for storage tests (the settings' defaults)."""
    return Limits(images=200, period="day", max_concurrent=3, max_queued=10)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An open ``Database`` on ``database_url``."""
    database = await Database.open(database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def queue(db: Database, limits: Limits, clock: FakeClock) -> JobQueue:
    """A ``JobQueue`` with a 60 s lease, 3 attempts and the fake clock."""
    return JobQueue(db, lease_seconds=60, max_attempts=3, limits=limits, clock=clock)


@pytest.fixture
def quotas(db: Database, limits: Limits, clock: FakeClock) -> Quotas:
    """``Quotas`` sharing the queue's limits and clock."""
    return Quotas(db, limits, clock=clock)


@pytest.fixture
def users(db: Database, clock: FakeClock) -> Users:
    """``Users`` on the test database."""
    return Users(db, clock=clock)


@pytest.fixture
def image_store(tmp_path: Path) -> FileImageStore:
    """A file image store in a temporary directory."""
    return FileImageStore(tmp_path / "images")
