"""Pytest fixtures: ``fake_discord`` (the server) and ``discord_to_fake`` (discord.py -> it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakediscord import FakeDiscord

# How long a bot's last event handlers may take once the fake Discord is gone.
HANDLER_GRACE = 5.0


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A started fake Discord on 127.0.0.1 (random port), stopped after the test.

    discord.py's endpoint globals are restored afterwards, so a bot that points them at the
    fake cannot leak into later tests.
    """
    import discord.gateway
    import discord.http

    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    fake = FakeDiscord()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
        await _settle_event_handlers()
    if fake.server_errors:
        pytest.fail(f"the fake Discord itself failed: {fake.server_errors!r}")


async def _settle_event_handlers() -> None:
    """Let the event handlers discord.py scheduled as a bot went away (a last dispatch while it
    closed) run to their end, or cancel them: a task the loop never started would be dropped
    unawaited when the test's loop closes, and reported against whichever test runs next."""
    handlers = [t for t in asyncio.all_tasks() if t.get_name().startswith("discord.py: ")]
    if not handlers:
        return
    _, late = await asyncio.wait(handlers, timeout=HANDLER_GRACE)
    for task in late:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)


@pytest.fixture
def discord_to_fake(
    fake_discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeDiscord]:
    """Point discord.py's REST base and default gateway at the fake (for clients built in tests)."""
    import discord.gateway
    import discord.http
    import yarl

    monkeypatch.setattr(discord.http.Route, "BASE", fake_discord.api_base)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake_discord.gateway_url)
    )
    yield fake_discord
