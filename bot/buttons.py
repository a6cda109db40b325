"""The job button, a ``DynamicItem`` whose ``custom_id`` carries all its state.

After a restart the bot still answers clicks on old messages, because the job id and image index
come from the ``custom_id`` and the job from storage. The button hands a click to the client it
arrived on (``ClickHandler``), so it needs nothing from the modules that act on clicks; the views
that arrange buttons on a message are in ``bot.views``.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

import discord

from bot.actions import CUSTOM_ID_TEMPLATE, Action, Click, decode, encode


@runtime_checkable
class ClickHandler(Protocol):
    """A client that acts on job button clicks (``ImagineBot``)."""

    async def handle_click(self, interaction: discord.Interaction, click: Click, /) -> None:
        """Acknowledge and run ``click``; every failure ends in one ephemeral message."""


_LOOKS: dict[Action, tuple[str | None, str | None, discord.ButtonStyle]] = {
    # action: (label, emoji, style)
    Action.REROLL: (None, "🔄", discord.ButtonStyle.secondary),
    Action.CANCEL: (None, "❌", discord.ButtonStyle.danger),
    Action.UPSCALE_SUBTLE: ("Upscale (Subtle)", None, discord.ButtonStyle.secondary),
    Action.UPSCALE_CREATIVE: ("Upscale (Creative)", None, discord.ButtonStyle.secondary),
    Action.VARY_SUBTLE: ("Vary (Subtle)", None, discord.ButtonStyle.secondary),
    Action.VARY_STRONG: ("Vary (Strong)", None, discord.ButtonStyle.secondary),
    Action.VARY_REGION: ("Vary (Region)", None, discord.ButtonStyle.secondary),
    Action.ZOOM_OUT_2: ("Zoom Out 2x", None, discord.ButtonStyle.secondary),
    Action.ZOOM_OUT_15: ("Zoom Out 1.5x", None, discord.ButtonStyle.secondary),
    Action.ZOOM_CUSTOM: ("Custom Zoom", None, discord.ButtonStyle.secondary),
    Action.MAKE_SQUARE: ("Make Square", None, discord.ButtonStyle.secondary),
    Action.PAN_LEFT: (None, "⬅️", discord.ButtonStyle.secondary),
    Action.PAN_RIGHT: (None, "➡️", discord.ButtonStyle.secondary),
    Action.PAN_UP: (None, "⬆️", discord.ButtonStyle.secondary),
    Action.PAN_DOWN: (None, "⬇️", discord.ButtonStyle.secondary),
}


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID_TEMPLATE):
    """One button of a job message: ``imagine:<action>:<job id>:<image index>``."""

    def __init__(self, action: Action, job_id: int, index: int = 0, *, row: int | None = None):
        self.click = Click(action, job_id, index)
        label: str | None
        emoji: str | None
        if action in (Action.UPSCALE, Action.VARIATION):
            label, emoji = f"{action.value.upper()}{index + 1}", None
            style = discord.ButtonStyle.secondary
        else:
            label, emoji, style = _LOOKS[action]
        super().__init__(
            discord.ui.Button(
                label=label,
                emoji=emoji,
                style=style,
                custom_id=encode(action, job_id, index),
                row=row,
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> JobButton:
        """Rebuild the button from a click on any message, old or new."""
        click = decode(match.group(0))
        return cls(click.action, click.job_id, click.index, row=item.row)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Hand the click to the client, which runs it inside the error boundary."""
        client = interaction.client
        if not isinstance(client, ClickHandler):
            raise RuntimeError("this client does not handle imagine job buttons")
        await client.handle_click(interaction, self.click)
