"""From an acknowledged interaction to queued jobs with their public messages.

Shared by /imagine and the buttons that make new jobs: fetch image prompts behind the SSRF guard,
store them, enqueue in one transaction (idempotent on the interaction id), then post one message
per job and store its id so the loops can edit it later with the bot token.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
import discord

from bot.errors import UserFacingError
from bot.permissions import cannot_post, missing_permissions, refusal_text, unposted_text
from bot.render import job_content
from bot.safety import FetchRefused, fetch_image, inspect_image
from bot.services import Services
from bot.views import cancel_view
from storage.contract import Job, JobSpec

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg", "webp": ".webp", "gif": ".gif"}


def _suffix(fmt: str | None) -> str:
    return _SUFFIXES.get((fmt or "").lower(), ".img")


async def fetch_and_store_urls(
    urls: Sequence[str], services: Services, session: aiohttp.ClientSession
) -> dict[str, str]:
    """Fetch each distinct image URL behind the SSRF guard and store it: ``url -> sha256``."""
    stored: dict[str, str] = {}
    for url in dict.fromkeys(urls):
        try:
            fetched = await fetch_image(url, session=session)
        except FetchRefused as exc:
            raise UserFacingError(f"Could not use the image {url}: {exc}.") from None
        blob = await services.images.put(fetched.data, suffix=_suffix(fetched.format))
        stored[url] = blob.sha256
    return stored


async def store_attachment(attachment: discord.Attachment, services: Services) -> str:
    """Check and store the command's image attachment; returns its sha256."""
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
    info = await checked_image(data, attachment.filename)
    blob = await services.images.put(data, suffix=_suffix(info))
    return blob.sha256


async def checked_image(data: bytes, name: str) -> str:
    """Decode ``data`` with the same format and pixel limits as fetched URLs; its format."""
    try:
        return (await inspect_image(data)).format
    except FetchRefused as exc:
        raise UserFacingError(f"The attachment {name!r} was refused: {exc}.") from None


async def enqueue(
    interaction: discord.Interaction, services: Services, specs: Sequence[JobSpec]
) -> list[Job]:
    """Enqueue ``specs`` for the interaction's user, idempotent on the interaction id.

    Refused first, with nothing stored, where the bot could not post the job messages.
    """
    missing = missing_permissions(interaction)
    if missing:
        raise UserFacingError(refusal_text(missing))
    jobs = await services.queue.enqueue(
        interaction.user.id,
        specs,
        interaction_id=interaction.id,
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
    )
    # Claimed before any await, so delivery never races the first post of these messages.
    services.messages.start_posting(job.id for job in jobs)
    return jobs


def channel_of(interaction: discord.Interaction) -> discord.PartialMessageable:
    """The interaction's channel, addressed with the bot token (no cache needed)."""
    if interaction.channel_id is None:
        raise UserFacingError("This command only works in a server channel.")
    return interaction.client.get_partial_messageable(
        interaction.channel_id, guild_id=interaction.guild_id
    )


async def post_job_messages(
    interaction: discord.Interaction, services: Services, jobs: Sequence[Job]
) -> list[discord.Message]:
    """Post one public channel message per job and store its id on the job.

    Channel messages (not interaction webhooks) so that every later edit uses the bot token and
    works long after the 15-minute interaction token has expired. When Discord refuses a post
    for the channel (gone, hidden, no permission), the jobs not posted yet are cancelled and
    refunded and the user is told privately what is missing.
    """
    channel = channel_of(interaction)
    posted = []
    try:
        for index, job in enumerate(jobs):
            try:
                message = await channel.send(
                    job_content(job, services.parser), view=cancel_view(job.id)
                )
            except discord.HTTPException as exc:
                if not cannot_post(exc):
                    raise
                unposted = jobs[index:]
                ended = await services.queue.cancel_unposted([j.id for j in unposted], str(exc))
                raise UserFacingError(unposted_text(interaction, exc, ended)) from None
            await services.queue.set_message_id(job.id, message.id)
            services.messages.done_posting(job.id)
            posted.append(message)
    finally:
        # A job whose message could not be posted gets a fresh one from the delivery loop.
        for job in jobs:
            services.messages.done_posting(job.id)
        services.delivery_wakeup.set()
    return posted


def queued_text(jobs: Sequence[Job]) -> str:
    """The private confirmation for the user who queued ``jobs``."""
    ids = ", ".join(f"#{job.id}" for job in jobs)
    return f"Queued {len(jobs)} job{'s' if len(jobs) != 1 else ''}: {ids}."
