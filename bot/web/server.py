"""The bot process's one web server (aiohttp): built here, started and stopped with the bot.

Features (health, the admin dashboard, the region editor) add their routes to ``WebServer.app``
before ``start``; links to them are made with ``url`` from ``public_url`` and signed with
``signer``. Nothing listens unless ``web_port`` is set.
"""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web
from pydantic import SecretStr

from bot.web.signing import LinkSigner, load_secret

log = logging.getLogger(__name__)


class WebSettings(Protocol):
    """The settings the web server reads (``imagine.settings.Settings`` has them all)."""

    @property
    def web_port(self) -> int | None: ...
    @property
    def web_host(self) -> str: ...
    @property
    def public_url(self) -> str | None: ...
    @property
    def web_secret(self) -> SecretStr | None: ...


@dataclass(frozen=True)
class WebConfig:
    """Where the server listens, the address people reach it at, and its signing secret."""

    host: str
    port: int
    public_url: str | None
    secret: bytes

    @classmethod
    def from_settings(cls, settings: WebSettings, data_dir: Path) -> WebConfig | None:
        """The configuration, or None when ``web_port`` is not set (blocking: reads the secret,
        or makes one in ``data_dir``)."""
        if settings.web_port is None:
            return None
        configured = settings.web_secret.get_secret_value() if settings.web_secret else None
        return cls(
            host=settings.web_host,
            port=settings.web_port,
            public_url=settings.public_url,
            secret=load_secret(configured, data_dir),
        )


def base_url(config: WebConfig, port: int | None = None) -> str:
    """``public_url``, or ``http://localhost:PORT`` when none is configured."""
    if config.public_url:
        return config.public_url.rstrip("/")
    return f"http://localhost:{port if port is not None else config.port}"


class WebServer:
    """One aiohttp application and its listening site."""

    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.signer = LinkSigner(config.secret)
        self.app = web.Application()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when ``web_port`` is 0)."""
        if self._port is None:
            raise RuntimeError("the web server has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        """The address links point at."""
        return base_url(self.config, self._port)

    def url(self, path: str, **query: str) -> str:
        """An absolute link to ``path`` on this server."""
        tail = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.base_url}{path}{tail}"

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies are marked Secure: the links point at an https address."""
        return self.base_url.startswith("https://")

    def foreign_origin(self, request: web.Request) -> str | None:
        """A form's ``Origin`` when it is neither the links' address nor the one the request
        came to (a form sent from another site); None when it is one of them, or absent."""
        origin = request.headers.get("Origin")
        if origin is None or origin in (_origin(self.base_url), _origin(str(request.url))):
            return None
        return origin

    async def start(self) -> None:
        """Listen on the configured address."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        self._port = int(addresses[0][1]) if addresses else self.config.port
        log.info("web server listening on %s:%s (%s)", self.config.host, self._port, self.base_url)

    async def stop(self) -> None:
        """Stop listening and finish open requests."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
