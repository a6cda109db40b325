"""U buttons: post one image of a grid publicly, once per image, one post per user per cooldown.

A repeat click on the same U of the same grid (by anyone, after any restart) gets a private link
to the earlier post instead of a second public copy: posts are recorded in storage. A user may
post one image every ``u_cooldown_seconds``; banned users may not post at all. ``/show`` posts
under the same two rules (``check_poster``, ``take_post_turn``), sharing the cooldown.
"""

from __future__ import annotations

import asyncio
import io
import math

import discord

from bot.errors import UserFacingError
from bot.gates import PostGate
from bot.jobs import channel_of
from bot.render import pings, single_image_content
from bot.services import Services
from bot.uploads import fit_upload
from bot.views import single_view
from storage.contract import Job, JobStatus
from storage.posts import SinglePost


def message_link(guild_id: int | None, channel_id: int, message_id: int) -> str:
    """The address that opens a message in Discord."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def already_posted(job: Job, index: int, post: SinglePost) -> str:
    """The private answer to a repeat click of a U button."""
    link = message_link(post.guild_id, post.channel_id, post.message_id)
    return f"Image #{index + 1} of job #{job.id} is already posted: {link}"


async def check_poster(services: Services, user_id: int) -> None:
    """Refuse a banned user's public post."""
    if await services.users.is_banned(user_id):
        raise UserFacingError("You are banned from generating images here.")


def take_post_turn(gate: PostGate, user_id: int) -> None:
    """Start the user's post cooldown now, or refuse a post that comes before it ends."""
    wait = gate.take(user_id)
    if wait > 0:
        raise UserFacingError(
            f"You can post one image every {gate.cooldown:g} seconds; "
            f"try again in {math.ceil(wait)} s."
        )


async def post_single(
    interaction: discord.Interaction, services: Services, job: Job, index: int
) -> None:
    """Post image ``index`` of ``job`` alone with its buttons, or say why not (privately)."""
    await check_poster(services, interaction.user.id)
    if job.status is not JobStatus.SUCCEEDED:
        raise UserFacingError(f"Job #{job.id} has no images yet ({job.status}).")
    gate = services.posts_gate
    if not gate.begin(job.id, index):
        raise UserFacingError(
            f"Image #{index + 1} of job #{job.id} is being posted right now; "
            "it appears in a moment."
        )
    try:
        earlier = await services.posts.get(job.id, index)
        if earlier is not None:
            await interaction.followup.send(already_posted(job, index, earlier), ephemeral=True)
            return
        take_post_turn(gate, interaction.user.id)
        await _post(interaction, services, job, index)
    finally:
        gate.end(job.id, index)


async def _post(interaction: discord.Interaction, services: Services, job: Job, index: int) -> None:
    records = {record.index: record for record in await services.queue.images(job.id)}
    record = records.get(index)
    if record is None:
        raise UserFacingError(f"Job #{job.id} has no image #{index + 1}.")
    data = await services.images.get(record.sha256)
    payload, name = await asyncio.to_thread(
        fit_upload, data, services.settings.upload_limit_bytes, f"imagine_{job.id}_{index + 1}"
    )
    message = await channel_of(interaction).send(
        single_image_content(job, index, interaction.user.id, services.parser),
        file=discord.File(io.BytesIO(payload), filename=name),
        view=single_view(
            job.id,
            index,
            square=record.width == record.height,
            region=services.settings.region_editor,
        ),
        allowed_mentions=pings(interaction.user.id),
    )
    await services.posts.record(
        job.id,
        index,
        guild_id=interaction.guild_id,
        channel_id=message.channel.id,
        message_id=message.id,
        user_id=interaction.user.id,
    )
