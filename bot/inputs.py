"""A command's images (prompt URLs, references, the attachment): counted, fetched, checked, stored.

The order bounds what a refused command can cost the server: the count is checked with the
prompt, before anything is acknowledged; the caller checks ban, queue cap and quota before any
download; every image is fetched and decoded (within a pixel budget) before the first blob is
written; and when the enqueue transaction still refuses the command, the blobs no job or image
record uses are deleted again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import aiohttp
import discord

from bot.errors import UserFacingError
from bot.safety import FetchedImage, FetchRefused, Resolver, fetch_image, inspect_image
from bot.services import Services
from storage.blobs import unreferenced
from storage.contract import GenerationRequest

log = logging.getLogger(__name__)

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp", "gif": ".gif"}


def _suffix(fmt: str | None) -> str:
    return _SUFFIXES.get((fmt or "").lower(), ".img")


def image_urls(requests: Iterable[GenerationRequest]) -> list[str]:
    """The distinct image URLs of all requests, in order (each is fetched once)."""
    return list(dict.fromkeys(url for request in requests for url in request.image_urls))


def reference_urls(requests: Iterable[GenerationRequest]) -> list[str]:
    """The distinct ``--sref`` and ``--cref`` URLs of all requests, in order."""
    return list(
        dict.fromkeys(
            url for request in requests for url in (*request.style_refs, *request.character_refs)
        )
    )


def fetched_urls(requests: Sequence[GenerationRequest]) -> list[str]:
    """Every image URL a command downloads: image prompts, then references, each once."""
    return list(dict.fromkeys([*image_urls(requests), *reference_urls(requests)]))


def check_image_count(requests: Sequence[GenerationRequest], *, attached: bool, limit: int) -> None:
    """Refuse a command with more than ``limit`` images to fetch (the attachment counts).

    Style and character references are downloaded like image prompts, so they count too.
    """
    count = len(fetched_urls(requests)) + (1 if attached else 0)
    if count <= limit:
        return
    if limit == 0:
        raise UserFacingError("Image prompts are turned off on this server.")
    what = "image prompts and references" if reference_urls(requests) else "image prompts"
    raise UserFacingError(
        f"Your command has {count} {what}; at most {limit} are allowed per command "
        "(an attached image counts as one)."
    )


def render_size(requests: Sequence[GenerationRequest]) -> tuple[int, int]:
    """The largest image any request renders: what an image prompt is decoded down to."""
    return max(r.width for r in requests), max(r.height for r in requests)


@dataclass
class CommandImages:
    """A command's checked image prompts, in memory until ``store``; then their hashes."""

    fetched: dict[str, FetchedImage] = field(default_factory=dict)
    attachment: FetchedImage | None = None
    stored: dict[str, str] = field(default_factory=dict)  # URL -> sha256
    attachment_sha256: str | None = None

    def hashes(self) -> list[str]:
        """Every stored blob of the command."""
        found = list(self.stored.values())
        if self.attachment_sha256 is not None:
            found.append(self.attachment_sha256)
        return list(dict.fromkeys(found))

    def inputs_for(self, request: GenerationRequest) -> tuple[str, ...]:
        """A request's input images: its URLs' blobs, then the attachment, each once."""
        hashes = [self.stored[url] for url in request.image_urls]
        if self.attachment_sha256 is not None:
            hashes.append(self.attachment_sha256)
        return tuple(dict.fromkeys(hashes))

    def references_for(self, request: GenerationRequest) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """A request's style and character reference blobs, each once, in order."""
        style = tuple(dict.fromkeys(self.stored[url] for url in request.style_refs))
        character = tuple(dict.fromkeys(self.stored[url] for url in request.character_refs))
        return style, character

    async def store(self, services: Services) -> None:
        """Write the checked images to the image store."""
        for url, image in self.fetched.items():
            blob = await services.images.put(image.data, suffix=_suffix(image.format))
            self.stored[url] = blob.sha256
        if self.attachment is not None:
            image = self.attachment
            blob = await services.images.put(image.data, suffix=_suffix(image.format))
            self.attachment_sha256 = blob.sha256

    async def discard(self, services: Services) -> None:
        """Delete the stored blobs that nothing in the database names (a refused command)."""
        try:
            for sha256 in await unreferenced(services.db, self.hashes()):
                await services.images.delete(sha256)
        except Exception as exc:
            # Called while a refusal is on its way to the user: that refusal must win. A blob
            # left behind is an orphan for the purge, not a broken job.
            log.warning("could not delete the images of a refused command: %s", exc)


async def fetch_urls(
    urls: Sequence[str],
    session: aiohttp.ClientSession,
    resolver: Resolver,
    *,
    fit: tuple[int, int],
) -> dict[str, FetchedImage]:
    """Fetch and check each URL behind the SSRF guard, one at a time: ``url -> image``."""
    fetched: dict[str, FetchedImage] = {}
    for url in urls:
        try:
            fetched[url] = await fetch_image(url, session=session, resolver=resolver, fit=fit)
        except FetchRefused as exc:
            raise UserFacingError(f"Could not use the image {url}: {exc}.") from None
    return fetched


async def read_attachment(attachment: discord.Attachment, *, fit: tuple[int, int]) -> FetchedImage:
    """Download and check the command's image attachment (same limits as URLs)."""
    if attachment.size > MAX_ATTACHMENT_BYTES:
        raise UserFacingError(
            f"The attached file is {attachment.size} bytes; attachments may be at most "
            f"{MAX_ATTACHMENT_BYTES} bytes."
        )
    content_type = (attachment.content_type or "").split(";")[0].strip()
    if content_type and not content_type.startswith("image/"):
        raise UserFacingError(
            f"The attachment {attachment.filename!r} is {content_type}, not an image "
            "(PNG, JPEG, WebP or GIF)."
        )
    data = await attachment.read()
    try:
        return await inspect_image(data, fit=fit)
    except FetchRefused as exc:
        raise UserFacingError(
            f"The attachment {attachment.filename!r} was refused: {exc}."
        ) from None
