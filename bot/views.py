"""The buttons each job message shows: which ``JobButton``s, on which rows, in which state."""

from __future__ import annotations

from typing import Any

import discord

from bot.actions import Action
from bot.buttons import JobButton
from storage.contract import GRID_SIZE, Job, JobKind, JobStatus


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
