"""The buttons each job message shows: which ``JobButton``s, on which rows, in which state."""

from __future__ import annotations

from typing import Any

import discord

from bot.actions import FAST_PROFILE_MODES, Action
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


def grid_view(job_id: int, *, enhance: bool = False) -> discord.ui.View:
    """U1-U4 and 🔄 on the first row, V1-V4 on the second, E1-E4 (draft and turbo) on a third."""
    items: list[discord.ui.Item[Any]] = [
        JobButton(Action.UPSCALE, job_id, i, row=0) for i in range(GRID_SIZE)
    ]
    items.append(JobButton(Action.REROLL, job_id, 0, row=0))
    items += [JobButton(Action.VARIATION, job_id, i, row=1) for i in range(GRID_SIZE)]
    if enhance:
        items += [JobButton(Action.ENHANCE, job_id, i, row=2) for i in range(GRID_SIZE)]
    return _view(*items)


def edit_buttons(job_id: int, index: int, row: int, *, square: bool) -> list[JobButton]:
    """The editing rows under a single image: zooms (and Make Square), then the four pans."""
    zooms = [Action.ZOOM_OUT_2, Action.ZOOM_OUT_15, Action.ZOOM_CUSTOM]
    if not square:
        zooms.append(Action.MAKE_SQUARE)
    pans = [Action.PAN_LEFT, Action.PAN_RIGHT, Action.PAN_UP, Action.PAN_DOWN]
    return [JobButton(action, job_id, index, row=row) for action in zooms] + [
        JobButton(action, job_id, index, row=row + 1) for action in pans
    ]


def single_view(
    job_id: int, index: int, *, square: bool = True, region: bool = False
) -> discord.ui.View:
    """Buttons under one image of a grid: upscale, vary, reroll, then the editing rows.

    ``square``: the image is square (no Make Square); ``region``: the web editor is configured
    (Vary (Region) is offered).
    """
    vary = [Action.VARY_SUBTLE, Action.VARY_STRONG]
    if region:
        vary.append(Action.VARY_REGION)
    return _view(
        JobButton(Action.UPSCALE_SUBTLE, job_id, index, row=0),
        JobButton(Action.UPSCALE_CREATIVE, job_id, index, row=0),
        *(JobButton(action, job_id, index, row=1) for action in vary),
        JobButton(Action.REROLL, job_id, index, row=1),
        *edit_buttons(job_id, index, 2, square=square),
    )


def upscaled_view(job_id: int, *, square: bool = True, region: bool = False) -> discord.ui.View:
    """Buttons under an upscaled image: vary it, then the editing rows."""
    vary = [Action.VARY_SUBTLE, Action.VARY_STRONG]
    if region:
        vary.append(Action.VARY_REGION)
    return _view(
        *(JobButton(action, job_id, 0, row=0) for action in vary),
        *edit_buttons(job_id, 0, 1, square=square),
    )


def job_view(job: Job, *, region: bool = False) -> discord.ui.View | None:
    """The buttons a job message shows in the job's current state."""
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return cancel_view(job.id)
    if job.status is not JobStatus.SUCCEEDED:
        return None
    if job.kind is JobKind.UPSCALE:
        square = job.request.width == job.request.height
        return upscaled_view(job.id, square=square, region=region)
    return grid_view(job.id, enhance=job.request.mode in FAST_PROFILE_MODES)
