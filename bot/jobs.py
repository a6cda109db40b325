"""From an acknowledged interaction to queued jobs with their public messages.

Shared by /imagine and the buttons that make new jobs: enqueue in one transaction (idempotent on
the interaction id), then post one message per job and store its id so the loops can edit it
later with the bot token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import discord

from bot.channel_access import cannot_post, missing_permissions, refusal_text, unposted_text
from bot.errors import UserFacingError
from bot.render import job_content, pings
from bot.services import Services
from bot.views import cancel_view
from storage.contract import Job, JobSpec


@dataclass(frozen=True)
class Origin:
    """Who asks for new jobs, where their messages go, and the key that makes it idempotent.

    For Discord interactions the key is the interaction id; the web editor uses a number drawn
    from its link, so a link queues its job once however often it is submitted.
    """

    user_id: int
    key: int
    guild_id: int | None
    channel_id: int | None

    @classmethod
    def of(cls, interaction: discord.Interaction) -> Origin:
        """The origin of an interaction."""
        return cls(
            interaction.user.id, interaction.id, interaction.guild_id, interaction.channel_id
        )


async def enqueue(
    interaction: discord.Interaction, services: Services, specs: Sequence[JobSpec]
) -> list[Job]:
    """Enqueue ``specs`` for the interaction's user, idempotent on the interaction id.

    Refused first, with nothing stored, where the bot could not post the job messages.
    """
    missing = missing_permissions(interaction)
    if missing:
        raise UserFacingError(refusal_text(missing))
    return await enqueue_from(Origin.of(interaction), services, specs)


async def enqueue_from(origin: Origin, services: Services, specs: Sequence[JobSpec]) -> list[Job]:
    """Enqueue ``specs`` for ``origin``'s user, idempotent on its key."""
    jobs = await services.queue.enqueue(
        origin.user_id,
        specs,
        interaction_id=origin.key,
        guild_id=origin.guild_id,
        channel_id=origin.channel_id,
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
    return await post_in_channel(channel_of(interaction), services, jobs, interaction)


async def post_in_channel(
    channel: discord.PartialMessageable,
    services: Services,
    jobs: Sequence[Job],
    interaction: discord.Interaction | None = None,
) -> list[discord.Message]:
    """``post_job_messages`` for a channel addressed directly (the web editor's jobs)."""
    posted = []
    try:
        for index, job in enumerate(jobs):
            try:
                message = await channel.send(
                    job_content(job, services.parser),
                    view=cancel_view(job.id),
                    allowed_mentions=pings(job.user_id),
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
