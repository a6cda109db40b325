"""What happens when a job button is clicked: acknowledge first, then look the job up and act."""

from __future__ import annotations

import discord

from bot.actions import Action, Click, InvalidButton, check_fits, refusal, spec_for
from bot.edit_clicks import button_edit_click, open_custom_zoom, region_link_click
from bot.edit_jobs import check_clicker, user_mode
from bot.edits import BUTTON_EDITS
from bot.errors import UserFacingError, send_error
from bot.jobs import enqueue, post_job_messages
from bot.offered import check_button_spec
from bot.services import Services, services_of
from bot.singles import post_single
from storage.capabilities import read_offered
from storage.contract import MAX_UPSCALE_SOURCE_PIXELS, Job, JobStatus
from storage.logcontext import bind


async def handle_click(interaction: discord.Interaction, click: Click) -> None:
    """Acknowledge a job button, then run it; every failure ends in one ephemeral message."""
    bind(job_id=click.job_id, user_id=interaction.user.id)
    try:
        services = services_of(interaction.client)
        if (refused := services.rules.guild_refusal(interaction.guild_id)) is not None:
            raise UserFacingError(refused)
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
        try:
            check_fits(click, parent)
        except InvalidButton as problem:
            raise UserFacingError(refusal(problem)) from None
        check_clicker(interaction.user.id, services, parent)
        if parent.images_purged_at is not None:
            raise UserFacingError(
                f"The stored images of job #{parent.id} were removed after the retention "
                "period, so its buttons no longer work; the images in this message remain."
            )
        if click.action is Action.UPSCALE:
            await post_single(interaction, services, parent, click.index)
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


async def _new_job(
    interaction: discord.Interaction, services: Services, parent: Job, click: Click
) -> None:
    if parent.status is not JobStatus.SUCCEEDED:
        raise UserFacingError(f"Job #{parent.id} has no images yet ({parent.status}).")
    if click.action in (Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE):
        await _check_upscale_source(services, parent, click.index)
    user_settings = await services.users.get_settings(interaction.user.id)
    mode = await user_mode(services, interaction.user.id, user_settings.mode)
    spec = spec_for(click, parent, variation=user_settings.variation, mode=mode)
    assert spec is not None, f"{click.action} makes no job and is handled before"
    # What the parent needed may be gone from the fleet since: refused as /imagine would be.
    spec = check_button_spec(spec, await read_offered(services.db, services.queue.now()))
    jobs = await enqueue(interaction, services, [spec])
    await post_job_messages(interaction, services, jobs)


async def _check_upscale_source(services: Services, parent: Job, index: int) -> None:
    """Refuse, before anything is charged, an upscale of an image that is already too big."""
    records = {record.index: record for record in await services.queue.images(parent.id)}
    record = records.get(index)
    if record is None:
        raise UserFacingError(f"Job #{parent.id} has no image #{index + 1}.")
    if record.width * record.height > MAX_UPSCALE_SOURCE_PIXELS:
        raise UserFacingError(
            f"Image #{index + 1} of job #{parent.id} is {record.width}x{record.height}; Upscale "
            f"takes images of at most {MAX_UPSCALE_SOURCE_PIXELS:,} pixels (2048x2048), so it "
            "cannot be upscaled again. Nothing was queued or charged."
        )
