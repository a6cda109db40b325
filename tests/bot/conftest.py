"""Fixtures for the bot tests: settings pointing at the fake Discord, a running bot, users."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imagine.settings import Settings
from tests.bot.harness import BotRun, ScriptedWorker
from tests.bot.internet import Internet, running_internet
from tests.fakediscord import FakeDiscord, User


@pytest.fixture
def bot_environ(fake_discord: FakeDiscord, tmp_path: Path, sqlite_template: Path) -> dict[str, str]:
    """Environment for a bot on a fresh, migrated SQLite file under the data dir."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(sqlite_template, data / "imagine.db")
    return {
        **fake_discord.environ(),
        "IMAGINE_DATA_DIR": str(data),
        "IMAGINE_QUOTA_IMAGES": "40",
        "IMAGINE_QUOTA_PERIOD": "day",
    }


@pytest.fixture
def bot_settings(bot_environ: dict[str, str]) -> Settings:
    """Settings built from ``bot_environ`` (no process environment involved)."""
    return Settings.load(bot_environ)


@pytest.fixture
async def bot_run(bot_settings: Settings, fake_discord: FakeDiscord) -> AsyncIterator[BotRun]:
    """The real bot, connected to the fake Discord and ready."""
    run = BotRun(bot_settings)
    try:
        await run.start(fake_discord)
        yield run
    finally:
        await run.stop()


@pytest.fixture
def worker(bot_run: BotRun) -> ScriptedWorker:
    """A scripted worker on the bot's storage."""
    assert bot_run.storage is not None
    return ScriptedWorker(bot_run.storage)


@pytest.fixture
def alice(fake_discord: FakeDiscord) -> User:
    """A member without special permissions."""
    return fake_discord.add_user("alice")


@pytest.fixture
def bob(fake_discord: FakeDiscord) -> User:
    """Another member without special permissions."""
    return fake_discord.add_user("bob")


@pytest.fixture
def boss(fake_discord: FakeDiscord) -> User:
    """A member with Manage Server."""
    return fake_discord.add_user("boss", manage_guild=True)


@pytest.fixture
async def internet() -> AsyncIterator[Internet]:
    """The fake internet (``tests.bot.internet``), counting the requests that reach it."""
    async with running_internet() as net:
        yield net


@pytest.fixture
async def run(
    fake_discord: FakeDiscord, bot_settings: Settings, internet: Internet
) -> AsyncIterator[BotRun]:
    """The bot, fetching image prompts and references from the fake internet."""
    bot = BotRun(bot_settings, fetch_session=internet.session, resolver=internet.resolve)
    await bot.start(fake_discord)
    try:
        yield bot
    finally:
        await bot.stop()
