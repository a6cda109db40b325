"""The worker's health port: ``/healthz`` (alive) and ``/readyz`` (database, migrations, model).

Off unless ``worker_health_port`` is set. The model counts as loaded once the engine has
prepared the default model; a worker that is stopping reports itself not ready, so a load
balancer or orchestrator stops counting on it before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from storage.db import Database
from storage.health import Check, add_health_routes, database_checks
from storage.migrate import head_revision

log = logging.getLogger(__name__)


class WorkerHealth:
    """What the worker's readiness depends on besides the database."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.stopping = False
        self.port: int | None = None

    def model_loaded(self, description: str) -> None:
        """The default model is loaded and the worker is about to claim jobs."""
        self.model = description

    def check(self) -> Check:
        """The model part of readiness."""
        if self.stopping:
            return Check("model", False, "the worker is shutting down")
        if self.model is None:
            return Check("model", False, "still loading the model")
        return Check("model", True, self.model)


@contextlib.asynccontextmanager
async def health_server(
    port: int | None, db: Database, *, host: str = "0.0.0.0"
) -> AsyncIterator[WorkerHealth]:
    """Serve the health endpoints on ``port`` (nothing when None) for the block's duration."""
    health = WorkerHealth()
    if port is None:
        yield health
        return
    head = await asyncio.to_thread(head_revision)

    async def database() -> list[Check]:
        return await database_checks(db, head)

    async def model() -> list[Check]:
        return [health.check()]

    app = web.Application()
    add_health_routes(app, [database, model])
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        addresses = runner.addresses
        health.port = int(addresses[0][1]) if addresses else port
        log.info("worker health endpoints on %s:%s", host, health.port)
        yield health
    finally:
        health.stopping = True
        await runner.cleanup()
