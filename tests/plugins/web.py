"""Pytest fixtures and helpers for HTTP tests: a database behind a proxy a test can cut.

``proxied_postgres`` is an empty, migrated PostgreSQL database reached through ``TcpProxy``;
stopping the proxy makes the database "go away" for everything connected through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from tests.plugins.database import _truncate


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``stop`` cuts every connection."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen (on the same port as before, after a ``stop``)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every open connection, both ways."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            # A reset connection simply ends this direction; the finally closes the other end.
            return
        finally:
            with contextlib.suppress(OSError):
                sink.close()
            self._writers.discard(sink)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def get_json(url: str) -> tuple[int, dict[str, Any]]:
    """GET ``url``: (status, JSON body)."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def until(url: str, expected: int, *, within: float = 10.0) -> dict[str, Any]:
    """Poll ``url`` until it answers ``expected`` (a server still starting counts as not yet)."""
    deadline = asyncio.get_running_loop().time() + within
    last: object = None
    while True:
        try:
            status, body = await get_json(url)
        except aiohttp.ClientConnectorError as exc:
            status, body, last = -1, {}, exc
        else:
            last = (status, body)
            if status == expected:
                return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{url} answered {last!r}, not {expected}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def proxied_postgres(postgres_session_url: str) -> AsyncIterator[tuple[str, TcpProxy]]:
    """An empty migrated PostgreSQL database reached through a ``TcpProxy``: (url, proxy)."""
    await _truncate(postgres_session_url)
    url = make_url(postgres_session_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    try:
        yield url.set(port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        await proxy.stop()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium (Debian's ``chromium`` package) driven by Playwright.

    Skipped when Chromium or Playwright is missing, unless ``CI`` is set: then the test fails,
    since CI installs both.
    """
    import os
    import shutil

    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        problem = f"playwright is not installed: {exc}"
    else:
        problem = (
            "" if shutil.which(CHROMIUM) else f"{CHROMIUM} is missing (apt-get install chromium)"
        )
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem + " (CI is set, so browser tests must run)")
        pytest.skip(problem)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()
