"""The image fetch guard: refusals for non-public targets, and the checked success path.

"The internet" here is an aiohttp server on a Unix socket: the client session's
``UnixConnector`` sends every connection there whatever the URL says, so the guard runs
unchanged (public-looking addresses, pinned URLs, ``Host`` headers) without network access and
without any switch in the product code.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from PIL import Image
from yarl import URL

from bot.safety import (
    FetchedImage,
    FetchRefused,
    decode_image,
    fetch_image,
    inspect_image,
    is_public_address,
    pinned_url,
)

PUBLIC = "93.184.216.34"
DNS = {
    "images.example.com": [PUBLIC],
    "cdn.example.com": ["2606:4700:4700::1111"],
    "internal.example.com": ["10.0.0.5"],
    "mixed.example.com": [PUBLIC, "192.168.1.10"],
    "metadata.example.com": ["169.254.169.254"],
}


def png(width: int = 8, height: int = 6, mode: str = "RGB", kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), "red" if mode == "RGB" else 1).save(buffer, kind)
    return buffer.getvalue()


@dataclass
class Internet:
    """The fake internet: what it serves and which requests reached it."""

    socket_path: str
    seen: list[tuple[str, str]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    resolved: list[str] = field(default_factory=list)

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        self.resolved.append(host)
        if host not in DNS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return DNS[host]

    def session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=self.socket_path))


def _app(internet: Internet) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        internet.seen.append((request.host, request.path_qs))
        path = request.path
        if path == "/fox.png":
            return web.Response(body=png(), content_type="image/png")
        if path == "/fox.gif":
            frames = [Image.new("P", (5, 4), i) for i in range(3)]
            buffer = io.BytesIO()
            frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
            return web.Response(body=buffer.getvalue(), content_type="image/gif")
        if path == "/octet":
            return web.Response(body=png(), content_type="application/octet-stream")
        if path.startswith("/redirect/"):
            raise web.HTTPFound(request.query["to"])
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/big":
            return web.Response(body=b"\0" * 2048, content_type="image/png")
        if path == "/chunked":
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(8):
                await response.write(b"\0" * 512)
            await response.write_eof()
            return response
        if path == "/html":
            return web.Response(text="<html></html>", content_type="text/html")
        if path == "/bmp":
            return web.Response(body=png(kind="BMP"), content_type="image/bmp")
        if path == "/truncated":
            return web.Response(body=png(64, 64)[:60], content_type="image/png")
        if path == "/huge":
            return web.Response(body=png(200, 200), content_type="image/png")
        if path == "/hang":
            await internet.release.wait()
            return web.Response(body=png(), content_type="image/png")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return app


@pytest.fixture
async def internet() -> AsyncIterator[Internet]:
    directory = tempfile.mkdtemp(prefix="imagine-", dir="/tmp")  # short: socket paths are capped
    fake = Internet(socket_path=str(Path(directory) / "net.sock"))
    runner = web.AppRunner(_app(fake))
    await runner.setup()
    await web.UnixSite(runner, fake.socket_path).start()
    try:
        yield fake
    finally:
        fake.release.set()
        await runner.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


async def fetch(
    internet: Internet,
    url: str,
    *,
    max_bytes: int = 10 * 1024 * 1024,
    max_pixels: int = 25_000_000,
    deadline: float = 10.0,
) -> FetchedImage:
    async with internet.session() as session:
        return await fetch_image(
            url,
            session=session,
            resolver=internet.resolve,
            max_bytes=max_bytes,
            max_pixels=max_pixels,
            timeout=deadline,
        )


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.1.2.3", "::1", "10.0.0.1", "172.16.5.4", "192.168.0.1",
        "169.254.169.254", "fe80::1", "fe80::1%eth0", "0.0.0.0", "::", "240.0.0.1",
        "255.255.255.255", "224.0.0.1", "ff02::1", "100.64.0.1", "100.127.255.254",
        "fc00::1", "fd12:3456::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:100.64.0.1",
        "2002:7f00:1::1", "2002:c0a8:101::1", "64:ff9b::a00:1", "64:ff9b::7f00:1",
        "64:ff9b:1::1", "2001:0:4136:e378:8000:63bf:f5ff:fffe", "192.0.2.1", "198.18.0.1",
        "2001:db8::1", "not-an-address",
    ],
)  # fmt: skip
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
     "64:ff9b::808:808", "2002:0808:0808::1"],
)  # fmt: skip
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


def test_pinned_url_keeps_port_path_and_query() -> None:
    url = URL("https://images.example.com:8443/a%20b/c.png?x=1&y=2")
    assert str(pinned_url(url, PUBLIC)) == "https://93.184.216.34:8443/a%20b/c.png?x=1&y=2"
    assert str(pinned_url(url, "2606:4700::1")) == (
        "https://[2606:4700::1]:8443/a%20b/c.png?x=1&y=2"
    )


async def test_fetches_an_image_through_the_vetted_address(internet: Internet) -> None:
    image = await fetch(internet, "http://images.example.com/fox.png#frag")
    assert (image.content_type, image.width, image.height, image.format) == (
        "image/png",
        8,
        6,
        "png",
    )
    assert image.data == png()
    # The server saw the real name in Host, even though the URL carried the address.
    assert internet.seen == [("images.example.com", "/fox.png")]
    assert internet.resolved == ["images.example.com"]


async def test_gif_first_frame_and_octet_stream(internet: Internet) -> None:
    gif = await fetch(internet, "http://images.example.com/fox.gif")
    assert (gif.format, gif.width, gif.height) == ("gif", 5, 4)
    octet = await fetch(internet, "http://images.example.com:8080/octet")
    assert octet.content_type == "image/png"
    assert internet.seen[-1] == ("images.example.com:8080", "/octet")


async def test_follows_public_redirects_and_checks_each(internet: Internet) -> None:
    image = await fetch(
        internet, "http://images.example.com/redirect/?to=https%3A//cdn.example.com/fox.png"
    )
    assert image.width == 8
    assert internet.resolved == ["images.example.com", "cdn.example.com"]
    assert internet.seen[-1] == ("cdn.example.com", "/fox.png")


async def test_redirect_to_a_private_host_is_refused_before_connecting(
    internet: Internet,
) -> None:
    with pytest.raises(FetchRefused) as caught:
        await fetch(
            internet, "http://images.example.com/redirect/?to=http://internal.example.com/secret"
        )
    assert str(caught.value) == (
        "the host `internal.example.com` points to a private or reserved address (10.0.0.5); "
        "only public addresses are allowed"
    )
    assert [path for _, path in internet.seen] == [
        "/redirect/?to=http://internal.example.com/secret"
    ]


async def test_redirect_to_a_private_literal_is_refused(internet: Internet) -> None:
    with pytest.raises(FetchRefused, match=r"private or reserved address \(169\.254\.169\.254\)"):
        await fetch(
            internet, "http://images.example.com/redirect/?to=http://169.254.169.254/latest"
        )
    assert len(internet.seen) == 1


async def test_too_many_redirects(internet: Internet) -> None:
    with pytest.raises(FetchRefused) as caught:
        await fetch(internet, "http://images.example.com/loop")
    assert str(caught.value) == "the image URL redirected more than 3 times"
    assert len(internet.seen) == 4


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://images.example.com/fox.png", "only http and https image URLs are allowed"),
        ("file:///etc/passwd", "only http and https image URLs are allowed"),
        ("http://user:pw@images.example.com/fox.png", "with a user name or password"),
        ("http://127.0.0.1/fox.png", r"private or reserved address \(127\.0\.0\.1\)"),
        ("http://[::1]/fox.png", r"private or reserved address \(::1\)"),
        ("http://[::ffff:7f00:1]/fox.png", r"private or reserved address \(::ffff:7f00:1\)"),
        ("http://internal.example.com/fox.png", r"private or reserved address \(10\.0\.0\.5\)"),
        ("http://mixed.example.com/fox.png", r"private or reserved address \(192\.168\.1\.10\)"),
        ("http://metadata.example.com/", r"private or reserved address \(169\.254\.169\.254\)"),
        ("http://nowhere.example.com/fox.png", "the host `nowhere.example.com` could not be found"),
        ("http://images.example.com/missing.png", "the image URL answered HTTP 404"),
        ("http://images.example.com/html", "the URL points to a text/html page, not an image"),
        ("http://images.example.com/bmp", "the file is not a PNG, JPEG, WebP or GIF image"),
        ("http://images.example.com/truncated", "the image file is damaged or truncated"),
    ],
)
async def test_refusals(internet: Internet, url: str, message: str) -> None:
    with pytest.raises(FetchRefused, match=message):
        await fetch(internet, url)
    if "private" in message or "http and https" in message or "password" in message:
        assert internet.seen == []


async def test_size_cap_from_content_length(internet: Internet) -> None:
    with pytest.raises(FetchRefused, match=r"^the image is 2,048 bytes; the limit is"):
        await fetch(internet, "http://images.example.com/big", max_bytes=1024)


async def test_size_cap_while_streaming(internet: Internet) -> None:
    with pytest.raises(FetchRefused, match=r"^the image is larger than 1,024 bytes"):
        await fetch(internet, "http://images.example.com/chunked", max_bytes=1024)


async def test_pixel_cap(internet: Internet) -> None:
    with pytest.raises(FetchRefused) as caught:
        await fetch(internet, "http://images.example.com/huge", max_pixels=10_000)
    assert str(caught.value) == ("the image is 200x200 (40,000 pixels); the limit is 10,000 pixels")
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # the global limit is left alone


async def test_one_deadline_for_the_whole_fetch(internet: Internet) -> None:
    with pytest.raises(FetchRefused) as caught:
        await fetch(internet, "http://images.example.com/hang", deadline=0.3)
    assert str(caught.value) == "fetching the image took longer than 0.3 s"


class _Stop(Exception):
    """Raised from a trace hook to end a request before any socket is opened."""


async def test_request_goes_to_the_vetted_address_without_a_second_lookup() -> None:
    """DNS rebinding: the session would resolve the name again, but the URL holds the address."""
    dns_lookups: list[str] = []
    requests: list[tuple[str, str]] = []

    async def on_dns(
        session: aiohttp.ClientSession,
        context: object,
        params: aiohttp.TraceDnsResolveHostStartParams,
    ) -> None:
        dns_lookups.append(params.host)

    async def on_request(
        session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        requests.append((str(params.url), params.headers["Host"]))
        raise _Stop

    trace = aiohttp.TraceConfig()
    trace.on_dns_resolvehost_start.append(on_dns)
    trace.on_request_start.append(on_request)

    async def first_answer(host: str, port: int) -> list[str]:
        return [PUBLIC]

    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        with pytest.raises(_Stop):
            await fetch_image(
                "https://images.example.com:8443/fox.png?size=2",
                session=session,
                resolver=first_answer,
            )
    assert requests == [("https://93.184.216.34:8443/fox.png?size=2", "images.example.com:8443")]
    assert dns_lookups == []


def test_decode_image_accepts_the_allowed_formats() -> None:
    for kind in ("PNG", "JPEG", "WEBP", "GIF"):
        image = decode_image(png(kind=kind))
        assert (image.format, image.width, image.height) == (kind.lower(), 8, 6)


async def test_inspect_image_checks_attachment_bytes() -> None:
    image = await inspect_image(png(kind="WEBP"))
    assert (image.format, image.content_type) == ("webp", "image/webp")
    with pytest.raises(FetchRefused, match="not a PNG, JPEG, WebP or GIF image"):
        await inspect_image(b"GIF89a but not really")
    with pytest.raises(ValueError, match=r"the image is 8x6 \(48 pixels\)"):
        await inspect_image(png(), max_pixels=47)
