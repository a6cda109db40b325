"""What a button asks for, as plain data: no discord objects, so it is tested on its own.

A button's ``custom_id`` is ``imagine:<action>:<job id>:<image index>`` (index 0-3 of the grid);
``decode`` and ``encode`` convert, and ``spec_for`` turns a click into the ``JobSpec`` to enqueue
(or ``None`` for actions that need no GPU).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum

from storage.contract import (
    GRID_SIZE,
    Job,
    JobKind,
    JobSpec,
    SpeedMode,
    VariationStrength,
)

CUSTOM_ID_TEMPLATE = r"imagine:(?P<action>\w+):(?P<job>\d+):(?P<i>\d)"
_CUSTOM_ID = re.compile(CUSTOM_ID_TEMPLATE)

UPSCALE_SUBTLE = 0.2
UPSCALE_CREATIVE = 0.4


class Action(StrEnum):
    """Every button the bot puts on a message."""

    UPSCALE = "u"  # U1-U4: post image n alone; no GPU, no quota
    VARIATION = "v"  # V1-V4: new grid from image n at the user's variation strength
    REROLL = "reroll"  # 🔄: same request, new seed
    CANCEL = "cancel"  # ❌: stop a queued or running job, refund
    UPSCALE_SUBTLE = "upsubtle"
    UPSCALE_CREATIVE = "upcreative"
    VARY_SUBTLE = "varysubtle"
    VARY_STRONG = "varystrong"
    # Edits of a single image (outpainting, see bot.edits; Vary (Region) links to the editor).
    ZOOM_OUT_2 = "zoomtwo"
    ZOOM_OUT_15 = "zoomoneandhalf"
    ZOOM_CUSTOM = "zoomcustom"  # opens a form for the prompt and the zoom
    PAN_LEFT = "panleft"
    PAN_RIGHT = "panright"
    PAN_UP = "panup"
    PAN_DOWN = "pandown"
    MAKE_SQUARE = "square"
    VARY_REGION = "region"


@dataclass(frozen=True)
class Click:
    """A decoded button: which action, on which job, for which image."""

    action: Action
    job_id: int
    index: int


def encode(action: Action, job_id: int, index: int = 0) -> str:
    """The ``custom_id`` for a button."""
    if not 0 <= index <= 9:
        raise ValueError(f"image index must be 0-9, got {index}")
    return f"imagine:{action.value}:{job_id}:{index}"


def decode(custom_id: str) -> Click:
    """Parse a ``custom_id``; ``ValueError`` names what is wrong with it."""
    match = _CUSTOM_ID.fullmatch(custom_id)
    if match is None:
        raise ValueError(f"not an imagine button: {custom_id!r}")
    try:
        action = Action(match["action"])
    except ValueError:
        raise ValueError(f"unknown button action {match['action']!r}") from None
    return Click(action, int(match["job"]), int(match["i"]))


def spec_for(
    click: Click,
    parent: Job,
    *,
    variation: VariationStrength,
    mode: SpeedMode,
) -> JobSpec | None:
    """The job a click enqueues, or ``None`` for clicks that make no job (U buttons, cancel).

    The new job keeps the parent's request with its seed cleared (enqueue picks a fresh one) and
    runs in the clicker's speed mode; its cost is in images.
    """
    request = dataclasses.replace(parent.request, seed=None, mode=mode)
    if click.action in (Action.UPSCALE, Action.CANCEL):
        return None
    if click.action is Action.REROLL:
        if parent.kind in (JobKind.OUTPAINT, JobKind.INPAINT):
            # The same edit of the same source, with a new seed.
            return JobSpec(
                kind=parent.kind,
                request=request,
                cost=GRID_SIZE,
                parent_job_id=parent.parent_job_id,
                parent_index=parent.parent_index,
                strength=parent.strength,
                edit=parent.edit,
            )
        if parent.kind is JobKind.VARIATION:
            # Rerolling a variation grid varies the same source image again.
            return JobSpec(
                kind=JobKind.VARIATION,
                request=request,
                cost=GRID_SIZE,
                parent_job_id=parent.parent_job_id,
                parent_index=parent.parent_index,
                strength=parent.strength,
            )
        return JobSpec(
            kind=JobKind.REROLL,
            request=request,
            cost=GRID_SIZE,
            input_images=parent.input_images,
        )
    if click.action in (Action.VARIATION, Action.VARY_SUBTLE, Action.VARY_STRONG):
        if click.action is Action.VARY_SUBTLE:
            variation = VariationStrength.SUBTLE
        elif click.action is Action.VARY_STRONG:
            variation = VariationStrength.STRONG
        return JobSpec(
            kind=JobKind.VARIATION,
            request=request,
            cost=GRID_SIZE,
            parent_job_id=parent.id,
            parent_index=click.index,
            strength=variation.denoise,
        )
    if click.action not in (Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE):
        raise ValueError(f"{click.action} edits an image; bot.edits makes its job")
    strength = UPSCALE_SUBTLE if click.action is Action.UPSCALE_SUBTLE else UPSCALE_CREATIVE
    return JobSpec(
        kind=JobKind.UPSCALE,
        request=request,
        cost=1,
        parent_job_id=parent.id,
        parent_index=click.index,
        strength=strength,
    )


def is_admin(
    user_id: int,
    role_ids: frozenset[int] | set[int],
    *,
    manage_guild: bool,
    admin_user_ids: list[int],
    admin_role_ids: list[int],
) -> bool:
    """Whether a member may run admin commands: Manage Server, or listed by id or role."""
    return (
        manage_guild
        or user_id in admin_user_ids
        or any(role in role_ids for role in admin_role_ids)
    )
