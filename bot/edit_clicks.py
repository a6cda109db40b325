"""The editing buttons of a single image: Zoom Out, Pan and Make Square queue a grid at once;
Custom Zoom opens a form (a Discord modal) for the prompt and the zoom and queues on submit.

Every path goes through the same enqueue as the other buttons (quota, limits, idempotency on
the interaction id) and posts the new job's message in the channel.
"""

from __future__ import annotations

import dataclasses

import discord

from bot.actions import Click
from bot.edits import (
    button_edit,
    edit_spec,
    edited_request,
    parse_zoom,
    prompt_for_editing,
    zoom_from_prompt,
)
from bot.errors import UserFacingError, send_error
from bot.jobs import enqueue, post_job_messages
from bot.prompt import MAX_PROMPT_CHARS
from bot.services import Services, services_of
from storage.contract import (
    Edit,
    EditAction,
    GenerationRequest,
    ImageRecord,
    Job,
    JobStatus,
    SpeedMode,
)
from storage.edits import ZOOM_MAX, outpaint

# A form left open longer than this is answered "this interaction failed" by Discord.
FORM_TIMEOUT = 15 * 60.0


def check_clicker(user_id: int, services: Services, job: Job) -> None:
    """Refuse someone else's job unless the server allows it."""
    if job.user_id != user_id and not services.settings.allow_foreign_clicks:
        raise UserFacingError("Only the person who started this job can use its buttons.")


async def source_image(services: Services, job: Job, index: int) -> ImageRecord:
    """Image ``index`` of a finished job, the one an edit starts from."""
    if job.status is not JobStatus.SUCCEEDED:
        raise UserFacingError(f"Job #{job.id} has no images yet ({job.status}).")
    for record in await services.queue.images(job.id):
        if record.index == index:
            return record
    raise UserFacingError(f"Job #{job.id} has no image #{index + 1} to edit.")


async def clicker_mode(services: Services, user_id: int) -> SpeedMode:
    """The clicker's speed mode (relax only where the server allows it)."""
    mode = (await services.users.get_settings(user_id)).mode
    if mode is SpeedMode.RELAX and not services.settings.allow_relax:
        return SpeedMode.FAST
    return mode


async def queue_edit(
    interaction: discord.Interaction,
    services: Services,
    parent: Job,
    source: ImageRecord,
    edit: Edit,
    *,
    request: GenerationRequest | None = None,
    aspect: str | None = None,
) -> list[Job]:
    """Enqueue ``edit`` for the interaction's user and post its job message."""
    if request is not None:
        mode = request.mode
    else:
        mode = await clicker_mode(services, interaction.user.id)
    spec = edit_spec(parent, source, edit, mode=mode, request=request, aspect=aspect)
    jobs = await enqueue(interaction, services, [spec])
    await post_job_messages(interaction, services, jobs)
    return jobs


async def button_edit_click(
    interaction: discord.Interaction, services: Services, parent: Job, click: Click
) -> None:
    """Zoom Out 2x / 1.5x, a pan or Make Square, on an acknowledged click."""
    source = await source_image(services, parent, click.index)
    await queue_edit(interaction, services, parent, source, button_edit(click.action, source))


async def open_custom_zoom(
    interaction: discord.Interaction, services: Services, click: Click
) -> None:
    """Answer a Custom Zoom click with its form, prefilled with the image's prompt."""
    parent = await services.queue.get(click.job_id)
    check_clicker(interaction.user.id, services, parent)
    await source_image(services, parent, click.index)
    prompt = prompt_for_editing(parent.request, services.parser)
    await interaction.response.send_modal(CustomZoomForm(click, prompt))


class CustomZoomForm(discord.ui.Modal):
    """The Custom Zoom form: the prompt (editable) and a zoom factor from 1 to 2."""

    def __init__(self, click: Click, prompt: str) -> None:
        super().__init__(
            title="Zoom Out",
            timeout=FORM_TIMEOUT,
            custom_id=f"imagine-zoom:{click.job_id}:{click.index}",
        )
        self.click = click
        self.prompt: discord.ui.TextInput[CustomZoomForm] = discord.ui.TextInput(
            label="Prompt",
            style=discord.TextStyle.paragraph,
            default=prompt[:MAX_PROMPT_CHARS],
            max_length=MAX_PROMPT_CHARS,
            custom_id="prompt",
        )
        self.zoom: discord.ui.TextInput[CustomZoomForm] = discord.ui.TextInput(
            label="Zoom out by (more than 1, at most 2)",
            default=f"{ZOOM_MAX:g}",
            placeholder="1.5",
            max_length=8,
            custom_id="zoom",
        )
        self.add_item(self.prompt)
        self.add_item(self.zoom)

    async def on_submit(self, interaction: discord.Interaction, /) -> None:
        """Queue the zoom; every refusal ends in one ephemeral message."""
        try:
            await submit_custom_zoom(interaction, self.click, self.prompt.value, self.zoom.value)
        except Exception as exc:
            await send_error(interaction, exc)


async def submit_custom_zoom(
    interaction: discord.Interaction, click: Click, prompt: str, zoom_text: str
) -> None:
    """Check the form, acknowledge, and queue the zoom of the edited prompt."""
    services = services_of(interaction.client)
    # Pure checks first, so a typo is answered at once and nothing is stored.
    text, typed_zoom = zoom_from_prompt(prompt)
    zoom = typed_zoom if typed_zoom is not None else parse_zoom(zoom_text)
    banned = services.banned.find(text)
    if banned is not None:
        raise UserFacingError(f"Your prompt was refused: “{banned}” is not allowed on this server.")
    await interaction.response.defer()
    parent = await services.queue.get(click.job_id)
    check_clicker(interaction.user.id, services, parent)
    source = await source_image(services, parent, click.index)
    defaults = await services.users.get_settings(interaction.user.id)
    request, aspect = edited_request(text, options=services.parser, defaults=defaults)
    if request.mode is SpeedMode.RELAX and not services.settings.allow_relax:
        request = dataclasses.replace(request, mode=SpeedMode.FAST)
    shape = None
    if aspect is not None:
        wide, _, high = aspect.partition(":")
        shape = (int(wide), int(high))
    edit = outpaint(
        EditAction.ZOOM, source.sha256, (source.width, source.height), zoom=zoom, aspect=shape
    )
    await queue_edit(interaction, services, parent, source, edit, request=request, aspect=aspect)
