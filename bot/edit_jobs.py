"""What every edit path shares (buttons, the Custom Zoom form, the region editor): the source
image, who may edit it, and queueing the edit's grid through the usual enqueue and post."""

from __future__ import annotations

from typing import Protocol

import discord

from bot.edits import edit_spec
from bot.errors import UserFacingError
from bot.jobs import Origin, enqueue_from, post_in_channel
from bot.offered import for_family
from bot.services import Services
from storage.capabilities import read_offered
from storage.contract import (
    Edit,
    GenerationRequest,
    ImageRecord,
    Job,
    JobKind,
    JobStatus,
    SpeedMode,
)


class MessagePoster(Protocol):
    """What posting a job message needs from the Discord client: a channel by id."""

    def get_partial_messageable(
        self, id: int, *, guild_id: int | None = None, type: discord.ChannelType | None = None
    ) -> discord.PartialMessageable:
        """A channel addressed by id."""
        ...


def check_clicker(user_id: int, services: Services, job: Job) -> None:
    """Refuse someone else's job unless the server allows it."""
    if job.user_id != user_id and not services.settings.allow_foreign_clicks:
        raise UserFacingError("Only the person who started this job can use its buttons.")


async def source_image(services: Services, job: Job, index: int) -> ImageRecord:
    """Image ``index`` of a finished job, the one an edit starts from."""
    if job.status is not JobStatus.SUCCEEDED:
        raise UserFacingError(f"Job #{job.id} has no images yet ({job.status}).")
    if job.images_purged_at is not None:
        raise UserFacingError(
            f"The stored images of job #{job.id} were removed after the retention period, "
            "so they can no longer be edited; the images in its message remain."
        )
    for record in await services.queue.images(job.id):
        if record.index == index:
            return record
    raise UserFacingError(f"Job #{job.id} has no image #{index + 1} to edit.")


async def user_mode(services: Services, user_id: int, mode: SpeedMode | None = None) -> SpeedMode:
    """``mode`` (or the user's own speed mode), relax only where the server allows it."""
    if mode is None:
        mode = (await services.users.get_settings(user_id)).mode
    if mode is SpeedMode.RELAX and not services.settings.allow_relax:
        return SpeedMode.FAST
    return mode


async def queue_edit(
    client: MessagePoster,
    services: Services,
    origin: Origin,
    parent: Job,
    source: ImageRecord,
    edit: Edit,
    *,
    request: GenerationRequest | None = None,
    aspect: str | None = None,
) -> Job:
    """Enqueue ``edit`` of ``source`` for ``origin`` and post its job message in its channel."""
    if origin.channel_id is None:
        raise UserFacingError("Edits only work in a server channel.")
    mode = await user_mode(services, origin.user_id, request.mode if request else None)
    # Edits need SDXL inpainting: a model of another family is refused before anything queues.
    offered = await read_offered(services.db, services.queue.now())
    for_family([request or parent.request], offered, JobKind.OUTPAINT)
    spec = edit_spec(parent, source, edit, mode=mode, request=request, aspect=aspect)
    (job,) = await enqueue_from(origin, services, [spec])
    channel = client.get_partial_messageable(origin.channel_id, guild_id=origin.guild_id)
    await post_in_channel(channel, services, [job])
    return job
