"""What happens when a job button is clicked: acknowledge first, then look the job up and act."""

from __future__ import annotations

import discord

from bot.actions import Action, Click, InvalidButton, check_fits, refusal, spec_for
from bot.errors import UserFacingError, send_error
from bot.jobs import enqueue, post_job_messages
from bot.services import Services, services_of
from bot.singles import post_single
from storage.contract import MAX_UPSCALE_SOURCE_PIXELS, Job, JobStatus, SpeedMode


async def handle_click(interaction: discord.Interaction, click: Click) -> None:
    """Acknowledge a job button, then run it; every failure ends in one ephemeral message."""
    try:
        services = services_of(interaction.client)
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
        _check_clicker(interaction, services, parent)
        if click.action is Action.UPSCALE:
            await post_single(interaction, services, parent, click.index)
            return
        await _new_job(interaction, services, parent, click)
    except Exception as exc:
        await send_error(interaction, exc)


def _check_clicker(interaction: discord.Interaction, services: Services, job: Job) -> None:
    if job.user_id != interaction.user.id and not services.settings.allow_foreign_clicks:
        raise UserFacingError("Only the person who started this job can use its buttons.")


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
    mode = user_settings.mode
    if mode is SpeedMode.RELAX and not services.settings.allow_relax:
        mode = SpeedMode.FAST
    spec = spec_for(click, parent, variation=user_settings.variation, mode=mode)
    assert spec is not None, f"{click.action} makes no job and is handled before"
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
