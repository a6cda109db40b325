"""What a button asks for, as plain data: no discord objects, so it is tested on its own.

A button's ``custom_id`` is ``imagine:<action>:<job id>:<image index>`` (index 0-3 of the grid);
``decode`` and ``encode`` convert, ``check_fits`` refuses an action that does not fit the job it
names, and ``spec_for`` turns a click into the ``JobSpec`` to enqueue (or ``None`` for actions
that need no GPU). A custom id is user input: the template takes ASCII letters and digits only,
with bounds, and every refusal (``InvalidButton``) says what was wrong.
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

# ASCII classes, not \w and \d: those match any Unicode letter or digit.
CUSTOM_ID_TEMPLATE = r"imagine:(?P<action>[a-z]+):(?P<job>[1-9][0-9]{0,18}):(?P<i>[0-3])"
CUSTOM_ID = re.compile(CUSTOM_ID_TEMPLATE)
# Any id in the button's shape, only to say which part of a malformed one is wrong.
_PARTS = re.compile(r"imagine:(?P<action>[^:]*):(?P<job>[^:]*):(?P<i>[^:]*)", re.DOTALL)
# Job ids are signed 64-bit integers in the database.
MAX_JOB_ID = 2**63 - 1
GRID_KINDS = frozenset(
    {JobKind.IMAGINE, JobKind.REROLL, JobKind.VARIATION, JobKind.OUTPAINT, JobKind.INPAINT}
)

UPSCALE_SUBTLE = 0.2
UPSCALE_CREATIVE = 0.4
# E1-E4 re-render a draft or turbo cell with the default profile, img2img from it: at 0.55 the
# composition, colours and subject stay and the detail is painted anew.
ENHANCE_STRENGTH = 0.55
FAST_PROFILE_MODES = frozenset({SpeedMode.TURBO, SpeedMode.DRAFT})
# The kinds of job that paint a new grid with the request's references.
REFERENCE_KINDS = frozenset({JobKind.REROLL, JobKind.VARIATION})


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
    ENHANCE = "enhance"  # E1-E4: a draft or turbo cell again with the default profile
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


def is_enhance(job: Job) -> bool:
    """Whether a job is an E button's re-render (a variation at the enhance strength)."""
    return job.kind is JobKind.VARIATION and job.strength == ENHANCE_STRENGTH


class InvalidButton(ValueError):
    """A button id or click that cannot be acted on; the message says why, for the user."""


@dataclass(frozen=True)
class Click:
    """A decoded button: which action, on which job, for which image."""

    action: Action
    job_id: int
    index: int


def encode(action: Action, job_id: int, index: int = 0) -> str:
    """The ``custom_id`` for a button."""
    if not 0 <= index < GRID_SIZE:
        raise ValueError(f"image index must be 0-{GRID_SIZE - 1}, got {index}")
    if not 1 <= job_id <= MAX_JOB_ID:
        raise ValueError(f"job id must be 1 to {MAX_JOB_ID}, got {job_id}")
    return f"imagine:{action.value}:{job_id}:{index}"


def decode(custom_id: str) -> Click:
    """Parse a ``custom_id``; ``InvalidButton`` names what is wrong with it."""
    match = CUSTOM_ID.fullmatch(custom_id)
    if match is None:
        raise InvalidButton(_what_is_wrong(custom_id))
    try:
        action = Action(match["action"])
    except ValueError:
        raise InvalidButton(f"unknown button action {match['action']!r}") from None
    job_id = int(match["job"])
    if job_id > MAX_JOB_ID:
        raise InvalidButton(f"job id {job_id} is out of range (1 to {MAX_JOB_ID})")
    return Click(action, job_id, int(match["i"]))


def _what_is_wrong(custom_id: str) -> str:
    parts = _PARTS.fullmatch(custom_id)
    if parts is None:
        return f"not an imagine button: {custom_id[:100]!r}"
    action, job, index = parts["action"], parts["job"], parts["i"]
    if action not in {a.value for a in Action}:
        return f"unknown button action {action[:20]!r}"
    if not re.fullmatch(r"[1-9][0-9]{0,18}", job):
        return f"job id {job[:30]!r} is not a job number (1 to {MAX_JOB_ID})"
    return (
        f"image index {index[:10]!r} is outside 0-{GRID_SIZE - 1} (a grid has {GRID_SIZE} images)"
    )


def refusal(exc: InvalidButton) -> str:
    """What the user who clicked an invalid button is told."""
    return f"This button cannot be used: {exc}. Nothing was queued or charged."


_GRID_ONLY = {
    Action.UPSCALE: "U",
    Action.VARIATION: "V",
    Action.REROLL: "🔄",
    Action.ENHANCE: "E",
}


def check_fits(click: Click, parent: Job) -> None:
    """Refuse (``InvalidButton``) an action that does not fit the kind of job it names.

    U, V and 🔄 belong to a grid; the buttons under a single image name either its grid and
    the image's index, or a single-image job (an upscale) and index 0.
    """
    if click.action is Action.CANCEL:
        return
    if click.action is Action.ENHANCE and parent.request.mode not in FAST_PROFILE_MODES:
        raise InvalidButton(
            f"E buttons belong to a draft or turbo grid, and job #{parent.id} was painted "
            f"in {parent.request.mode} mode"
        )
    if parent.kind in GRID_KINDS:
        return
    if click.action in _GRID_ONLY:
        raise InvalidButton(
            f"{_GRID_ONLY[click.action]} buttons belong to a grid of {GRID_SIZE} images, and "
            f"job #{parent.id} is a single {parent.kind} image"
        )
    if click.index != 0:
        raise InvalidButton(
            f"job #{parent.id} has one image, so there is no image #{click.index + 1}"
        )


def spec_for(
    click: Click,
    parent: Job,
    *,
    variation: VariationStrength,
    mode: SpeedMode,
) -> JobSpec | None:
    """The job a click enqueues, or ``None`` for clicks that make no job (U buttons, cancel).

    The new job keeps the parent's request with its seed cleared (enqueue picks a fresh one);
    its speed mode is ``grid_mode``'s for new grids and ``default_profile_mode``'s for E and
    upscales; its cost is in images. New grids (re-rolls, variations, E) keep the
    parent's style and character references: the request's URLs and their blobs.
    """
    spec = _spec_for(click, parent, variation=variation, mode=mode)
    if spec is None or spec.kind not in REFERENCE_KINDS:
        return spec
    return dataclasses.replace(
        spec, style_images=parent.style_images, character_images=parent.character_images
    )


def default_profile_mode(clicker: SpeedMode) -> SpeedMode:
    """The speed mode of a job painted with the default profile for a clicker in ``clicker``
    mode: relax stays relax, and every other mode (turbo too) is fast."""
    return SpeedMode.RELAX if clicker is SpeedMode.RELAX else SpeedMode.FAST


def grid_mode(parent: Job, clicker: SpeedMode) -> SpeedMode:
    """The speed mode of a re-roll or variation of ``parent`` clicked in ``clicker`` mode.

    The profile comes from the parent, as E's (the default one) comes from the button: a draft
    or turbo grid's 🔄 and V paint with its profile again, whatever the clicker's mode. Only a
    parent painted with the default profile takes the clicker's fast or relax
    (``default_profile_mode``). A profile has no relax, so a relax clicker's re-roll of a draft
    grid is a draft grid, charged as one, as ``--draft`` wins over relax in /settings; where the
    server does not allow relax the clicker's mode is already fast. An upscale refines with the
    default profile whatever its request's mode says, so it passes on no profile.
    """
    if parent.kind is not JobKind.UPSCALE and parent.request.mode in FAST_PROFILE_MODES:
        return parent.request.mode
    return default_profile_mode(clicker)


def _spec_for(
    click: Click,
    parent: Job,
    *,
    variation: VariationStrength,
    mode: SpeedMode,
) -> JobSpec | None:
    if click.action in (Action.UPSCALE, Action.CANCEL):
        return None
    request = dataclasses.replace(parent.request, seed=None, mode=grid_mode(parent, mode))
    if click.action is Action.ENHANCE:
        # The cell's own seed, the default profile (relax stays relax), composition kept.
        return JobSpec(
            kind=JobKind.VARIATION,
            request=dataclasses.replace(
                request, seed=parent.seed + click.index, mode=default_profile_mode(mode)
            ),
            cost=GRID_SIZE,
            parent_job_id=parent.id,
            parent_index=click.index,
            strength=ENHANCE_STRENGTH,
            input_images=parent.input_images if request.control else (),
        )
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
                input_images=parent.input_images,
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
            # A ControlNet grid's variations follow its control image (the image prompt).
            input_images=parent.input_images if request.control else (),
        )
    if click.action not in (Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE):
        raise ValueError(f"{click.action} edits an image; bot.edits makes its job")
    strength = UPSCALE_SUBTLE if click.action is Action.UPSCALE_SUBTLE else UPSCALE_CREATIVE
    return JobSpec(
        kind=JobKind.UPSCALE,
        # An upscale refines with the default profile, in the clicker's fast or relax.
        request=dataclasses.replace(request, mode=default_profile_mode(mode)),
        cost=1,
        parent_job_id=parent.id,
        parent_index=click.index,
        strength=strength,
    )
