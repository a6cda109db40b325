"""Migrations: one head, upgrade from empty and back down on both databases, schema in sync."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

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
