"""An HTTP proxy on 127.0.0.1 in front of the S3 server that fails or stalls requests on demand.

Requests pass through unchanged (the Host header too, so SigV4 signatures still match); the
next ``fail`` requests are answered with an S3 error document and ``status`` instead, the next
``stall`` requests are held ``stall_seconds`` before they are forwarded, and the next
``cut_bodies`` successful GETs send half their body and drop the connection. Every request is
recorded when it arrives, with what the proxy answered.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

_HOP = {"connection", "content-length", "transfer-encoding", "expect", "keep-alive", "date"}


@dataclass
class Seen:
    """One request that reached the proxy."""

    method: str
    path: str
    headers: dict[str, str]
    body_md5: bytes
    answered: int = 0  # the status sent back; 0 while it has not been answered


@dataclass
class FaultyProxy:
    """Forwards to ``upstream``; injects failures and stalls."""

    upstream: str
    fail: int = 0
    status: int = 503
    stall: int = 0
    stall_seconds: float = 0.0
    cut_bodies: int = 0
    seen: list[Seen] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    url: str = ""

    async def start(self) -> None:
        """Listen on a free port."""
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        """Stop listening."""
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def requests(self, method: str) -> list[Seen]:
        """The recorded requests with that HTTP method."""
        return [seen for seen in self.seen if seen.method == method]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        md5 = hashlib.md5(body, usedforsecurity=False).digest()
        seen = Seen(request.method, request.path_qs, headers, md5)
        self.seen.append(seen)
        if self.fail > 0:
            self.fail -= 1
            seen.answered = self.status
            return web.Response(
                status=self.status, body=_error(self.status), content_type="text/xml"
            )
        if self.stall > 0:
            self.stall -= 1
            # A server slower than the client's read timeout.
            await asyncio.sleep(self.stall_seconds)
        assert self._session is not None
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body,
            skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent"),
        ) as upstream:
            data = await upstream.read()
            answer = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            status = upstream.status
        seen.answered = status
        if self.cut_bodies > 0 and request.method == "GET" and status == 200 and len(data) > 1:
            self.cut_bodies -= 1
            cut = web.StreamResponse(status=status, headers=answer)
            cut.content_length = len(data)
            await cut.prepare(request)
            await cut.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()  # the connection drops mid-body
            return cut
        return web.Response(status=status, body=data, headers=answer)


def _error(status: int) -> bytes:
    code = {500: "InternalError", 503: "ServiceUnavailable"}.get(status, "InternalError")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>injected failure</Message></Error>"
    ).encode()
