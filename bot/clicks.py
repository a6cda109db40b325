"""What happens when a job button is clicked: acknowledge first, then look the job up and act."""

from __future__ import annotations

import asyncio
import io

import discord

from bot.actions import Action, Click, spec_for
from bot.edit_clicks import button_edit_click, open_custom_zoom, region_link_click
from bot.edit_jobs import check_clicker
from bot.edits import BUTTON_EDITS
from bot.errors import UserFacingError, send_error
from bot.jobs import channel_of, enqueue, post_job_messages
from bot.render import single_image_content
from bot.services import Services, services_of
from bot.uploads import fit_upload
from bot.views import single_view
from storage.contract import Job, JobStatus, SpeedMode


async def handle_click(interaction: discord.Interaction, click: Click) -> None:
    """Acknowledge a job button, then run it; every failure ends in one ephemeral message."""
    try:
        services = services_of(interaction.client)
        if click.action is Action.ZOOM_CUSTOM:
            # The form has to be the click's first answer, so nothing acknowledges it before.
            await open_custom_zoom(interaction, services, click)
            return
        # A silent acknowledgement: results appear as new channel messages, refusals as
        # private followups.
        await interaction.response.defer()
        if click.action is Action.CANCEL:
            await _cancel(interaction, services, click)
            return
        parent = await services.queue.get(click.job_id)
        check_clicker(interaction.user.id, services, parent)
        if click.action is Action.UPSCALE:
            await _show_single(interaction, services, parent, click.index)
            return
        if click.action in BUTTON_EDITS:
            await button_edit_click(interaction, services, parent, click)
            return
        if click.action is Action.VARY_REGION:
            await region_link_click(interaction, services, parent, click)
            return
        await _new_job(interaction, services, parent, click)
    except Exception as exc:
        await send_error(interaction, exc)


async def _cancel(interaction: discord.Interaction, services: Services, click: Click) -> None:
    job = await services.queue.request_cancel(click.job_id, user_id=interaction.user.id)
    services.delivery_wakeup.set()
    if job.status is JobStatus.CANCELLED:
        text = f"Cancelled job #{job.id}."
    else:
        text = f"Stopping job #{job.id}; it ends at the next step."
    if job.cost:
        text += f" Its {job.cost} images are refunded."
    await interaction.followup.send(text, ephemeral=True)


async def _show_single(
    interaction: discord.Interaction, services: Services, job: Job, index: int
) -> None:
    if job.status is not JobStatus.SUCCEEDED:
        raise UserFacingError(f"Job #{job.id} has no images yet ({job.status}).")
    records = {record.index: record for record in await services.queue.images(job.id)}
    record = records.get(index)
    if record is None:
        raise UserFacingError(f"Job #{job.id} has no image #{index + 1}.")
    data = await services.images.get(record.sha256)
    payload, name = await asyncio.to_thread(
        fit_upload, data, services.settings.upload_limit_bytes, f"imagine_{job.id}_{index + 1}"
    )
    await channel_of(interaction).send(
        single_image_content(job, index, interaction.user.id, services.parser),
        file=discord.File(io.BytesIO(payload), filename=name),
        view=single_view(
            job.id,
            index,
            square=record.width == record.height,
            region=services.settings.region_editor,
        ),
    )


async def _new_job(
    interaction: discord.Interaction, services: Services, parent: Job, click: Click
) -> None:
    if parent.status is not JobStatus.SUCCEEDED:
        raise UserFacingError(f"Job #{parent.id} has no images yet ({parent.status}).")
    user_settings = await services.users.get_settings(interaction.user.id)
    mode = user_settings.mode
    if mode is SpeedMode.RELAX and not services.settings.allow_relax:
        mode = SpeedMode.FAST
    spec = spec_for(click, parent, variation=user_settings.variation, mode=mode)
    assert spec is not None, f"{click.action} makes no job and is handled before"
    jobs = await enqueue(interaction, services, [spec])
    await post_job_messages(interaction, services, jobs)
