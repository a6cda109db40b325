"""Schema migrations: thin synchronous wrappers around Alembic (call them via ``to_thread``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

import migrations
from storage.db import async_url, create_engine

# ``__path__`` rather than ``__file__``: an editable install may expose it as a namespace package.
MIGRATIONS_DIR = Path(next(iter(migrations.__path__))).resolve()


def _config(url: str) -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute, not an ini option, so '%' in passwords needs no escaping.
    config.attributes["url"] = async_url(url).render_as_string(hide_password=False)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the newest schema)."""
    command.upgrade(_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the database at ``url`` to ``revision`` (default: empty)."""
    command.downgrade(_config(url), revision)


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(_config("sqlite://")).get_current_head()
    assert head is not None, "migrations/versions has no revisions"
    return head


def current_revision(url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""

    def _current(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async def _read() -> str | None:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(_current)
        finally:
            await engine.dispose()

    return asyncio.run(_read())


def upgrade_if_sqlite(url: str) -> bool:
    """Apply migrations when ``url`` is SQLite (the embedded default); True when it did."""
    if async_url(url).get_backend_name() != "sqlite":
        return False
    upgrade(url)
    return True
