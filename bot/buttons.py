"""Buttons and select menus whose ``custom_id`` carries all their state.

They are ``DynamicItem``s: after a restart the bot still answers clicks on old messages, because
the job id and image index come from the ``custom_id`` and the job from storage.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.actions import CUSTOM_ID_TEMPLATE, Action, Click, decode, encode
from storage.contract import GRID_SIZE, Job, JobKind, JobStatus

SETTINGS_TEMPLATE = r"imagine-settings:(?P<field>\w+)"

_LOOKS: dict[Action, tuple[str | None, str | None, discord.ButtonStyle]] = {
    # action: (label, emoji, style)
    Action.REROLL: (None, "🔄", discord.ButtonStyle.secondary),
    Action.CANCEL: (None, "❌", discord.ButtonStyle.danger),
    Action.UPSCALE_SUBTLE: ("Upscale (Subtle)", None, discord.ButtonStyle.secondary),
    Action.UPSCALE_CREATIVE: ("Upscale (Creative)", None, discord.ButtonStyle.secondary),
    Action.VARY_SUBTLE: ("Vary (Subtle)", None, discord.ButtonStyle.secondary),
    Action.VARY_STRONG: ("Vary (Strong)", None, discord.ButtonStyle.secondary),
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
        """Run the click through the click handlers and the error boundary."""
        from bot.clicks import handle_click

        await handle_click(interaction, self.click)


def _view(*items: discord.ui.Item[Any]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


def cancel_view(job_id: int) -> discord.ui.View:
    """The ❌ button shown while a job waits or runs."""
    return _view(JobButton(Action.CANCEL, job_id))


def grid_view(job_id: int) -> discord.ui.View:
    """U1-U4 and 🔄 on the first row, V1-V4 on the second."""
    items: list[discord.ui.Item[Any]] = [
        JobButton(Action.UPSCALE, job_id, i, row=0) for i in range(GRID_SIZE)
    ]
    items.append(JobButton(Action.REROLL, job_id, 0, row=0))
    items += [JobButton(Action.VARIATION, job_id, i, row=1) for i in range(GRID_SIZE)]
    return _view(*items)


def single_view(job_id: int, index: int) -> discord.ui.View:
    """Buttons under one image of a grid: upscale, vary, reroll."""
    return _view(
        JobButton(Action.UPSCALE_SUBTLE, job_id, index, row=0),
        JobButton(Action.UPSCALE_CREATIVE, job_id, index, row=0),
        JobButton(Action.VARY_SUBTLE, job_id, index, row=1),
        JobButton(Action.VARY_STRONG, job_id, index, row=1),
        JobButton(Action.REROLL, job_id, index, row=1),
    )


def upscaled_view(job_id: int) -> discord.ui.View:
    """Buttons under an upscaled image: vary it."""
    return _view(
        JobButton(Action.VARY_SUBTLE, job_id, 0, row=0),
        JobButton(Action.VARY_STRONG, job_id, 0, row=0),
    )


def job_view(job: Job) -> discord.ui.View | None:
    """The buttons a job message shows in the job's current state."""
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return cancel_view(job.id)
    if job.status is not JobStatus.SUCCEEDED:
        return None
    if job.kind is JobKind.UPSCALE:
        return upscaled_view(job.id)
    return grid_view(job.id)
