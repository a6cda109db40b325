"""Migrations: one head, upgrade from empty and back down on both databases, schema in sync."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from storage.db import create_engine
from storage.migrate import (
    _config,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
    upgrade_if_sqlite,
)
from storage.tables import metadata


def _inspect(url: str, what: str) -> object:
    def _run(connection: Connection) -> object:
        if what == "tables":
            return sorted(inspect(connection).get_table_names())
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)

    async def _main() -> object:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_run)
        finally:
            await engine.dispose()

    return asyncio.run(_main())


def test_there_is_exactly_one_head() -> None:
    heads = ScriptDirectory.from_config(_config("sqlite://")).get_heads()
    assert heads == [head_revision()]


def test_upgrade_from_empty_to_head_and_back(empty_database_url: str) -> None:
    url = empty_database_url
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == head_revision()
    expected = sorted([*(table.name for table in metadata.sorted_tables), "alembic_version"])
    assert _inspect(url, "tables") == expected
    assert _inspect(url, "diff") == []  # the migrations build exactly storage.tables

    downgrade(url, "base")
    assert current_revision(url) is None
    assert _inspect(url, "tables") == ["alembic_version"]
    upgrade(url)
    assert current_revision(url) == head_revision()


def test_upgrade_if_sqlite_only_touches_sqlite(empty_database_url: str) -> None:
    applied = upgrade_if_sqlite(empty_database_url)
    assert applied == empty_database_url.startswith("sqlite")
    assert current_revision(empty_database_url) == (head_revision() if applied else None)


def test_upgrade_counts_the_jobs_already_running(empty_database_url: str) -> None:
    url = empty_database_url
    upgrade(url, "0001")

    async def _fill_and_read(fill: bool) -> list[tuple[int, int]]:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.begin() as conn:
                if fill:
                    await conn.execute(
                        text(
                            "INSERT INTO users (id, created_at, updated_at) "
                            "VALUES (1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP), "
                            "(2, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                        )
                    )
                    for user_id, status in ((1, "running"), (1, "running"), (1, "queued")):
                        await conn.execute(
                            text(
                                "INSERT INTO jobs (kind, status, user_id, request, seed, cost, "
                                "priority, max_attempts, created_at) VALUES ('imagine', :status, "
                                ":user_id, '{}', 1, 0, 1, 3, CURRENT_TIMESTAMP)"
                            ),
                            {"status": status, "user_id": user_id},
                        )
                    return []
                rows = await conn.execute(text("SELECT id, running FROM users ORDER BY id"))
                return [(int(user_id), int(running)) for user_id, running in rows]
        finally:
            await engine.dispose()

    asyncio.run(_fill_and_read(fill=True))
    upgrade(url)
    assert asyncio.run(_fill_and_read(fill=False)) == [(1, 2), (2, 0)]
    downgrade(url, "0001")
    assert current_revision(url) == "0001"


def test_edit_kinds_arrive_with_0007_and_keep_their_jobs(empty_database_url: str) -> None:
    url = empty_database_url
    before = ScriptDirectory.from_config(_config(url)).get_revision("0007_edits").down_revision
    assert isinstance(before, str)
    upgrade(url, before)

    async def _insert(kind: str) -> str:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO users (id, created_at, updated_at) VALUES "
                        "(1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) ON CONFLICT DO NOTHING"
                    )
                )
                await conn.execute(
                    text(
                        "INSERT INTO jobs (kind, status, user_id, request, seed, cost, priority, "
                        "max_attempts, created_at) VALUES (:kind, 'running', 1, '{}', 1, 4, 1, 3, "
                        "CURRENT_TIMESTAMP)"
                    ),
                    {"kind": kind},
                )
            return "stored"
        except IntegrityError:
            return "refused"
        finally:
            await engine.dispose()

    assert asyncio.run(_insert("outpaint")) == "refused"
    upgrade(url, "0007_edits")
    assert asyncio.run(_insert("outpaint")) == "stored"
    assert asyncio.run(_insert("inpaint")) == "stored"
    assert asyncio.run(_insert("sculpt")) == "refused"

    async def _running() -> int:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return int((await conn.execute(text("SELECT running FROM users"))).scalar_one())
        finally:
            await engine.dispose()

    # The running-jobs triggers survived the schema change.
    assert asyncio.run(_running()) == 2
    try:
        downgrade(url, before)
    except RuntimeError as exc:
        assert "2 outpaint/inpaint jobs exist" in str(exc)
    else:
        raise AssertionError("the downgrade should refuse while edit jobs exist")
    assert current_revision(url) == "0007_edits"
