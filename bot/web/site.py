"""The bot's web site: the server with every feature's routes, tied to the bot's lifetime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from bot.services import Services
from bot.web import dashboard
from bot.web.server import WebConfig, WebServer
from storage.health import Check, add_health_routes, database_checks
from storage.migrate import head_revision


class Gateway(Protocol):
    """What readiness needs to know about the Discord client."""

    @property
    def ws(self) -> object: ...
    def is_closed(self) -> bool: ...


def gateway_check(client: Gateway) -> Check:
    """Whether the client holds an open gateway connection."""
    ws = client.ws
    if client.is_closed() or ws is None:
        return Check("gateway", False, "not connected to Discord")
    if not getattr(ws, "open", False):
        return Check("gateway", False, "the gateway connection is closed; reconnecting")
    return Check("gateway", True, "connected")


Feature = Callable[[WebServer], None]


async def start_web(
    client: Gateway, services: Services, features: Sequence[Feature] = ()
) -> WebServer | None:
    """Build and start the web server when ``web_port`` is set; None otherwise.

    The dashboard and each of ``features`` add their routes to the server before it starts.
    """
    settings = services.settings
    config = await asyncio.to_thread(WebConfig.from_settings, settings, settings.storage.data_dir)
    if config is None:
        return None
    server = WebServer(config)
    head = await asyncio.to_thread(head_revision)

    async def database() -> list[Check]:
        return await database_checks(services.db, head)

    async def gateway() -> list[Check]:
        return [gateway_check(client)]

    add_health_routes(server.app, [database, gateway])
    dashboard.setup(server, services)
    for feature in features:
        feature(server)
    await server.start()
    return server
