"""Pytest fixtures: ``fake_discord`` (the server) and ``discord_to_fake`` (discord.py -> it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakediscord import FakeDiscord


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
    if fake.server_errors:
        pytest.fail(f"the fake Discord itself failed: {fake.server_errors!r}")


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
