"""The editing buttons of a single image: Zoom Out, Pan and Make Square queue a grid at once;
Custom Zoom opens a form (a Discord modal) for the prompt and the zoom and queues on submit;
Vary (Region) answers privately with a one-time link to the web editor (``bot.web.region``).

Every path goes through the same enqueue as the other buttons (quota, limits, idempotency on
the interaction id) and posts the new job's message in the channel.
"""

from __future__ import annotations

from datetime import timedelta

import discord

from bot.actions import Click
from bot.edit_jobs import check_clicker, queue_edit, source_image
from bot.edits import (
    button_edit,
    edited_request,
    parse_zoom,
    prompt_for_editing,
    zoom_from_prompt,
)
from bot.errors import UserFacingError, send_error
from bot.jobs import Origin
from bot.moderation import banned_refusal
from bot.prompt import MAX_PROMPT_CHARS
from bot.services import Services, services_of
from bot.web.region import EditorTarget, editor_link
from bot.web.server import WebServer
from storage.contract import EditAction, Job
from storage.edits import ZOOM_MAX, outpaint

# A form left open longer than this is answered "this interaction failed" by Discord.
FORM_TIMEOUT = 15 * 60.0


async def button_edit_click(
    interaction: discord.Interaction, services: Services, parent: Job, click: Click
) -> None:
    """Zoom Out 2x / 1.5x, a pan or Make Square, on an acknowledged click."""
    source = await source_image(services, parent, click.index)
    edit = button_edit(click.action, source)
    await queue_edit(interaction.client, services, Origin.of(interaction), parent, source, edit)


async def region_link_click(
    interaction: discord.Interaction, services: Services, parent: Job, click: Click
) -> None:
    """Vary (Region): a private link to the web editor for this image (works once)."""
    server = getattr(interaction.client, "web", None)
    if not services.settings.region_editor or not isinstance(server, WebServer):
        raise UserFacingError(
            "Vary (Region) needs the web editor, and this server has not turned it on."
        )
    if interaction.channel_id is None:
        raise UserFacingError("Edits only work in a server channel.")
    await source_image(services, parent, click.index)
    target = EditorTarget(parent.id, click.index, interaction.channel_id, interaction.guild_id)
    minutes = services.settings.region_link_minutes
    url = editor_link(server, interaction.user.id, target, timedelta(minutes=minutes))
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Open the editor", url=url))
    await interaction.followup.send(
        f"Paint the part of image #{click.index + 1} to change in your browser, then submit. "
        f"This link is yours alone: it works once, for {minutes:g} minutes.",
        view=view,
        ephemeral=True,
    )


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
    await interaction.response.defer()
    parent = await services.queue.get(click.job_id)
    check_clicker(interaction.user.id, services, parent)
    source = await source_image(services, parent, click.index)
    defaults = await services.users.get_settings(interaction.user.id)
    request, aspect = edited_request(text, options=services.parser, defaults=defaults)
    # Checked as /imagine checks: permutations join words the typed text keeps apart.
    banned = services.banned.find_in_command(text, [request])
    if banned is not None:
        raise UserFacingError(banned_refusal(banned))
    shape = None
    if aspect is not None:
        wide, _, high = aspect.partition(":")
        shape = (int(wide), int(high))
    edit = outpaint(
        EditAction.ZOOM, source.sha256, (source.width, source.height), zoom=zoom, aspect=shape
    )
    origin = Origin.of(interaction)
    await queue_edit(
        interaction.client, services, origin, parent, source, edit, request=request, aspect=aspect
    )
