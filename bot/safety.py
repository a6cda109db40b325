"""Fetching user-supplied images (prompt URLs, attachments) behind an SSRF guard.

A prompt may name any URL, so the bot must never become a way to reach the host's own network:

- only ``http`` and ``https`` URLs without credentials;
- every address the host name resolves to must be public (no loopback, private, link-local,
  unspecified, reserved, multicast or CGNAT address, also when wrapped in IPv4-mapped, 6to4,
  Teredo or NAT64 IPv6 addresses); one bad address refuses the whole host;
- the connection goes to an address that was checked: the request URL carries the vetted IP and
  the name travels in the ``Host`` header and as the TLS server name, so a second DNS answer
  (DNS rebinding) is never consulted;
- redirects are followed by hand, each target checked the same way, at most ``max_redirects``;
- one deadline covers every hop; the body is capped by ``Content-Length`` up front and again
  while streaming;
- the bytes must decode as PNG, JPEG, WebP or GIF (first frame) within a pixel budget, checked
  from the header before any pixel is decoded; a JPEG is decoded at the smallest DCT scale that
  still covers the size the render needs. Pillow's global limit is left untouched.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
from PIL import Image, UnidentifiedImageError
from yarl import URL

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 25_000_000
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
# Pillow names a JPEG with extra pictures after it (phone photos, Ultra HDR gain maps) "MPO";
# its first picture, the one decoded, is a plain JPEG.
_SAME_AS = {"MPO": "JPEG"}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_CHUNK = 64 * 1024


class FetchRefused(ValueError):
    """The image was not fetched; ``str()`` says why, in words fit for the user."""


@dataclass(frozen=True)
class FetchedImage:
    """A downloaded, decoded and checked image; ``content_type`` comes from the decoded format."""

    data: bytes = field(repr=False)
    content_type: str
    width: int
    height: int
    format: str


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (without blocking the loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_address(str(ip.ipv4_mapped))
        if ip.sixtofour is not None and not is_public_address(str(ip.sixtofour)):
            return False
        if ip.teredo is not None and not is_public_address(str(ip.teredo[1])):
            return False
        if ip in _NAT64:
            return is_public_address(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
        if ip in _LOCAL_NAT64:
            return False
    elif ip in _CGNAT:
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _check_url(text: str) -> URL:
    try:
        url = URL(text)
    except (ValueError, TypeError):
        raise FetchRefused(f"`{text}` is not a valid URL") from None
    if url.scheme not in ("http", "https"):
        raise FetchRefused(f"only http and https image URLs are allowed; got `{text}`")
    if not url.raw_host:
        raise FetchRefused(f"`{text}` has no host name")
    if url.user is not None or url.password is not None:
        raise FetchRefused("image URLs with a user name or password are not allowed")
    return url.with_fragment(None)


async def _vetted_addresses(url: URL, resolver: Resolver) -> list[str]:
    host = url.raw_host
    assert host is not None and url.port is not None  # _check_url made sure
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = list(await resolver(host, url.port))
        except (OSError, UnicodeError):
            raise FetchRefused(f"the host `{url.host}` could not be found") from None
        if not addresses:
            raise FetchRefused(f"the host `{url.host}` could not be found")
    private = [address for address in addresses if not is_public_address(address)]
    if private:
        raise FetchRefused(
            f"the host `{url.host}` points to a private or reserved address ({private[0]}); "
            "only public addresses are allowed"
        )
    return addresses


def pinned_url(url: URL, address: str) -> URL:
    """``url`` with its host replaced by the vetted ``address`` (port, path and query kept)."""
    return url.with_host(address)


async def _open(
    session: aiohttp.ClientSession, url: URL, addresses: Sequence[str]
) -> aiohttp.ClientResponse:
    host = url.raw_host
    assert host is not None
    headers = {
        "Accept": "image/png, image/jpeg, image/webp, image/gif",
        # The URL carries the vetted address; the server still needs the name.
        "Host": url.host_port_subcomponent or host,
    }
    failure: aiohttp.ClientConnectionError | None = None
    for address in addresses:
        try:
            return await session.get(
                pinned_url(url, address),
                headers=headers,
                allow_redirects=False,
                server_hostname=host if url.scheme == "https" else None,
            )
        except aiohttp.ClientConnectionError as exc:
            failure = exc
    raise FetchRefused(f"could not connect to `{url.host}`: {failure}")


async def _read_body(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    limit = f"the limit is {max_bytes / 1024 / 1024:g} MB"
    if response.content_length is not None and response.content_length > max_bytes:
        raise FetchRefused(f"the image is {response.content_length:,} bytes; {limit}")
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        body.extend(chunk)
        if len(body) > max_bytes:
            raise FetchRefused(f"the image is larger than {max_bytes:,} bytes; {limit}")
    return bytes(body)


async def _download(
    url: URL, session: aiohttp.ClientSession, resolver: Resolver, max_bytes: int, hops: int
) -> bytes:
    for _ in range(hops + 1):
        addresses = await _vetted_addresses(url, resolver)
        async with await _open(session, url, addresses) as response:
            if response.status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise FetchRefused(
                        f"the image URL answered HTTP {response.status} without a target"
                    )
                url = _check_url(str(url.join(URL(location))))
                continue
            if response.status != 200:
                raise FetchRefused(f"the image URL answered HTTP {response.status}")
            if response.content_type.startswith("text/"):
                raise FetchRefused(
                    f"the URL points to a {response.content_type} page, not an image"
                )
            return await _read_body(response, max_bytes)
    raise FetchRefused(f"the image URL redirected more than {hops} times")


def _too_many_pixels(width: int, height: int, max_pixels: int) -> FetchRefused:
    return FetchRefused(
        f"the image is {width}x{height} ({width * height:,} pixels); "
        f"the limit is {max_pixels:,} pixels"
    )


def decode_image(
    data: bytes, max_pixels: int = MAX_PIXELS, fit: tuple[int, int] | None = None
) -> FetchedImage:
    """Check that ``data`` is a PNG, JPEG, WebP or GIF within ``max_pixels``; blocking.

    With ``fit`` (the size the image will be used at), a JPEG is decoded at a reduced scale
    that still covers it, which checks the whole file for a fraction of the memory. Whatever
    the bytes are, the only exception is ``FetchRefused``.
    """
    try:
        with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
            width, height = image.size
            kind = _SAME_AS.get(str(image.format), str(image.format))
            if kind not in FORMATS:
                raise UnidentifiedImageError(f"Pillow opened it as {image.format}")
            if width * height <= max_pixels:
                if fit is not None:
                    image.draft(None, fit)  # JPEG only; other formats ignore it
                image.load()  # a GIF or MPO loads its first frame only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise FetchRefused(f"the image has more than {max_pixels:,} pixels") from None
    except UnidentifiedImageError:
        raise FetchRefused("the file is not a PNG, JPEG, WebP or GIF image") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise FetchRefused("the image file is damaged or truncated") from None
    except Exception as exc:
        # Hostile bytes reach Pillow's decoders, which raise more than the types above
        # (struct.error, IndexError, ...); any of them means the file cannot be used.
        log.info("image refused: the decoder raised %s: %s", type(exc).__name__, exc)
        raise FetchRefused("the image file is damaged or truncated") from None
    if width * height > max_pixels:
        raise _too_many_pixels(width, height, max_pixels)
    return FetchedImage(data, FORMATS[kind], width, height, kind.lower())


async def inspect_image(
    data: bytes, *, max_pixels: int = MAX_PIXELS, fit: tuple[int, int] | None = None
) -> FetchedImage:
    """``decode_image`` off the event loop, for attachments that arrive as bytes."""
    return await asyncio.to_thread(decode_image, data, max_pixels, fit)


async def fetch_image(
    url: str,
    *,
    session: aiohttp.ClientSession,
    resolver: Resolver = system_resolver,
    max_bytes: int = MAX_BYTES,
    timeout: float = 10.0,  # noqa: ASYNC109 - one deadline across all hops, applied inside
    max_redirects: int = 3,
    max_pixels: int = MAX_PIXELS,
    fit: tuple[int, int] | None = None,
) -> FetchedImage:
    """Download and check one image; ``FetchRefused`` with the reason otherwise."""
    checked = _check_url(url)
    try:
        async with asyncio.timeout(timeout):
            data = await _download(checked, session, resolver, max_bytes, max_redirects)
    except TimeoutError:
        raise FetchRefused(f"fetching the image took longer than {timeout:g} s") from None
    except aiohttp.ClientError as exc:
        raise FetchRefused(f"the image could not be downloaded: {exc}") from None
    return await asyncio.to_thread(decode_image, data, max_pixels, fit)
