"""Health endpoints of the bot's web server and the worker's health port.

``/healthz`` says the process answers; ``/readyz`` flips to 503 when the database goes away (a
proxy in front of PostgreSQL is cut) and back to 200 when it returns.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from imagine.settings import Settings
from storage.db import Database
from storage.health import database_checks
from storage.migrate import downgrade, head_revision
from tests.bot.harness import BotRun, ephemeral_reply
from tests.fakediscord import FakeDiscord, User
from tests.plugins.web import TcpProxy, free_port, get_json, until


@pytest.mark.postgres
async def test_bot_readyz_flips_when_the_database_goes_away(
    fake_discord: FakeDiscord,
    bot_environ: dict[str, str],
    proxied_postgres: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied_postgres
    settings = Settings.load(
        {
            **bot_environ,
            "IMAGINE_DATABASE_URL": url,
            "IMAGINE_WEB_PORT": "0",
            "IMAGINE_WEB_HOST": "127.0.0.1",
        }
    )
    run = BotRun(settings)
    try:
        bot = await run.start(fake_discord)
        assert bot.web is not None
        base = bot.web.base_url
        assert base == f"http://localhost:{bot.web.port}"
        ready = await until(f"{base}/readyz", 200)
        assert ready["checks"] == {
            "database": {"ok": True, "detail": "reachable"},
            "migrations": {"ok": True, "detail": f"at {head_revision()}"},
            "gateway": {"ok": True, "detail": "connected"},
        }

        await proxy.stop()
        down = await until(f"{base}/readyz", 503)
        assert down["ok"] is False
        assert down["checks"]["database"]["ok"] is False
        assert down["checks"]["database"]["detail"].startswith("unreachable: ")
        assert down["checks"]["gateway"]["ok"] is True
        assert await get_json(f"{base}/healthz") == (200, {"ok": True})

        await proxy.start()
        assert (await until(f"{base}/readyz", 200))["ok"] is True
    finally:
        await run.stop()


async def test_bot_readyz_says_when_discord_is_gone(
    fake_discord: FakeDiscord, bot_environ: dict[str, str]
) -> None:
    port = free_port()
    settings = Settings.load(
        {**bot_environ, "IMAGINE_WEB_PORT": str(port), "IMAGINE_WEB_HOST": "127.0.0.1"}
    )
    run = BotRun(settings)
    try:
        await run.start(fake_discord)
        base = f"http://127.0.0.1:{port}"
        assert (await until(f"{base}/readyz", 200))["checks"]["gateway"]["ok"] is True
        await fake_discord.stop()
        gone = await until(f"{base}/readyz", 503)
        assert gone["checks"]["gateway"]["ok"] is False
        assert gone["checks"]["database"]["ok"] is True
    finally:
        await run.stop()


async def test_no_web_server_unless_a_port_is_set(
    fake_discord: FakeDiscord, bot_run: BotRun, boss: User
) -> None:
    assert bot_run.bot is not None and bot_run.bot.web is None
    asked = await fake_discord.invoke_command("admin dashboard", user=boss)
    assert await ephemeral_reply(fake_discord, asked) == (
        "The web dashboard is off: set web_port (and public_url) in the bot's settings."
    )


async def test_readiness_names_a_schema_behind_the_code(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "old.db"
    await asyncio.to_thread(shutil.copyfile, sqlite_template, path)
    await asyncio.to_thread(downgrade, f"sqlite:///{path}", "0002")
    db = await Database.open(f"sqlite:///{path}")
    try:
        checks = await database_checks(db, head_revision())
    finally:
        await db.close()
    assert [(c.name, c.ok, c.detail) for c in checks] == [
        ("database", True, "reachable"),
        ("migrations", False, f"at 0002, newest is {head_revision()}"),
    ]
