"""The job button, a ``DynamicItem`` whose ``custom_id`` carries all its state.

After a restart the bot still answers clicks on old messages, because the job id and image index
come from the ``custom_id`` and the job from storage. The button hands a click to the client it
arrived on (``ClickHandler``), so it needs nothing from the modules that act on clicks; the views
that arrange buttons on a message are in ``bot.views``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import discord

from bot.actions import (
    CUSTOM_ID,
    CUSTOM_ID_TEMPLATE,
    Action,
    Click,
    InvalidButton,
    decode,
    encode,
    refusal,
)
from bot.errors import UserFacingError, send_error

log = logging.getLogger(__name__)


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
        if action in (Action.UPSCALE, Action.VARIATION, Action.ENHANCE):
            label, emoji = f"{action.value[0].upper()}{index + 1}", None
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
        try:
            click = decode(match.group(0))
        except InvalidButton as problem:
            return RefusedButton(match.group(0), problem, row=item.row)
        return cls(click.action, click.job_id, click.index, row=item.row)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Hand the click to the client, which runs it inside the error boundary."""
        client = interaction.client
        if not isinstance(client, ClickHandler):
            raise RuntimeError("this client does not handle imagine job buttons")
        await client.handle_click(interaction, self.click)


class RefusedButton(JobButton, template=CUSTOM_ID_TEMPLATE):
    """A click in the job button's shape that names no action or job (an action this version
    does not have, a job id beyond 64 bits): answered with what is wrong, nothing else."""

    def __init__(self, custom_id: str, problem: InvalidButton, *, row: int | None = None):
        self.problem = problem
        # Not JobButton.__init__: there is no valid click to encode.
        discord.ui.DynamicItem.__init__(self, discord.ui.Button(custom_id=custom_id), row=row)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Tell the clicker why the button does nothing."""
        await refuse(interaction, self.problem)


async def refuse(interaction: discord.Interaction, problem: InvalidButton) -> None:
    """Answer a click that cannot be acted on with one ephemeral message saying why."""
    custom_id = _custom_id(interaction)
    log.info("refused button %r from user %s: %s", custom_id, interaction.user.id, problem)
    await send_error(interaction, UserFacingError(refusal(problem)))


def orphan_problem(interaction: discord.Interaction) -> InvalidButton | None:
    """Why no ``JobButton`` takes this click on an ``imagine:`` button, or ``None``.

    ``None`` when the click is not on an ``imagine:`` id, or when a ``JobButton`` takes it:
    discord.py hands a click to a dynamic item only when its id matches the template and is a
    component of the clicked message, so anything else (a malformed or forged id) would go
    unanswered.
    """
    if interaction.type is not discord.InteractionType.component:
        return None
    custom_id = _custom_id(interaction)
    if custom_id is None or not custom_id.startswith("imagine:"):
        return None
    if CUSTOM_ID.fullmatch(custom_id) and _on_message(interaction.message, custom_id):
        return None
    try:
        decode(custom_id)
    except InvalidButton as problem:
        return problem
    return InvalidButton("it is not one of the buttons on that message")


def _custom_id(interaction: discord.Interaction) -> str | None:
    data: Mapping[str, object] = interaction.data or {}
    custom_id = data.get("custom_id")
    return custom_id if isinstance(custom_id, str) else None


def _on_message(message: discord.Message | None, custom_id: str) -> bool:
    if message is None:
        return False
    for component in message.components:
        children = component.children if isinstance(component, discord.ActionRow) else [component]
        for child in children:
            if isinstance(child, discord.Button) and child.custom_id == custom_id:
                return True
    return False
