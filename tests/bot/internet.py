"""A fake internet for image downloads: an aiohttp server on a Unix socket.

The bot's fetch session connects there whatever the URL says, and ``resolve`` gives a public
address for ``*.example.com``, so the SSRF guard runs unchanged (as in ``tests/bot_safety``).
Each path serves a small PNG whose colour depends on the path; ``seen`` lists the requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from PIL import Image

SITE = "https://images.example.com"


def picture(name: str) -> bytes:
    """A small PNG whose colour depends on ``name``."""
    color = tuple(hashlib.sha256(name.encode()).digest()[:3])
    out = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(out, format="PNG")
    return out.getvalue()


@dataclass
class Internet:
    """What the fake internet served, and a gate for the one slow image."""

    socket_path: str
    seen: list[str] = field(default_factory=list)
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        return ["93.184.216.34"] if host.endswith(".example.com") else []

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=self.socket_path))


@asynccontextmanager
async def running_internet() -> AsyncIterator[Internet]:
    """The fake internet, serving until the block ends."""
    directory = tempfile.mkdtemp(prefix="imagine-", dir="/tmp")  # socket paths are short
    net = Internet(socket_path=str(Path(directory) / "net.sock"))

    async def handle(request: web.Request) -> web.StreamResponse:
        net.seen.append(request.path)
        name = request.path.strip("/")
        if name == "same-as-a.png":
            name = "a.png"  # other URL, same bytes
        if name == "slow.png":
            net.hanging.set()
            await net.release.wait()
        return web.Response(body=picture(name), content_type="image/png")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, net.socket_path).start()
    try:
        yield net
    finally:
        net.release.set()
        await runner.cleanup()
        shutil.rmtree(directory, ignore_errors=True)
