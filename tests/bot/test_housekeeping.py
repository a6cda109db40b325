"""The bot's own housekeeping: expired web logins are forgotten whether or not images expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from imagine.settings import Settings
from storage.bundle import open_storage
from storage.tables import web_sessions
from storage.weblinks import WebLogins
from tests.bot.harness import BotRun, eventually
from tests.fakediscord import FakeDiscord
from tests.plugins.database import FakeClock


async def test_expired_web_sessions_are_forgotten_without_image_retention(
    fake_discord: FakeDiscord, bot_environ: dict[str, str]
) -> None:
    settings = Settings.load(bot_environ)
    assert settings.image_retention_days is None
    async with await open_storage(settings.storage()) as storage:
        yesterday = WebLogins(storage.db, clock=FakeClock(datetime.now(UTC) - timedelta(days=1)))
        await yesterday.create_session(7, timedelta(hours=1))
        _, live = await WebLogins(storage.db).create_session(8, timedelta(hours=1))

    run = BotRun(settings)
    try:
        await run.start(fake_discord)
        assert run.storage is not None
        db = run.storage.db

        async def users_with_sessions() -> list[int] | None:
            async with db.read() as conn:
                users = list((await conn.execute(select(web_sessions.c.user_id))).scalars())
            return users if users == [live.user_id] else None

        assert await eventually(users_with_sessions) == [8]
    finally:
        await run.stop()
