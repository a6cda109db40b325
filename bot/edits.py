"""The jobs the editing buttons make, as plain data (no discord): Zoom Out, Pan, Make Square,
Custom Zoom and Vary (Region).

An edit job paints a new 2x2 grid from one stored image: its ``Edit`` (``storage.edits``) is
the source, the canvas and the mask; its request is the parent's (or the prompt the user
edited), sized to the canvas, in the clicker's speed mode, with a new seed. It costs a grid.
"""

from __future__ import annotations

import dataclasses
import re

from bot.actions import Action
from bot.prompt import ParserOptions, PromptError, parse, parse_aspect, render
from storage.contract import (
    GRID_SIZE,
    Edit,
    EditAction,
    GenerationRequest,
    ImageRecord,
    Job,
    JobKind,
    JobSpec,
    SpeedMode,
    UserSettings,
)
from storage.edits import check_zoom, edit_aspect, outpaint, sdxl_size

# How much of the canvas is noised before painting: the fill keeps a hint of the colours it
# started from (the source's edges, or the blurred source under a region mask).
EDIT_STRENGTH = 0.9

# Button -> (edit, zoom); Custom Zoom's factor comes from its form.
BUTTON_EDITS: dict[Action, tuple[EditAction, float | None]] = {
    Action.ZOOM_OUT_2: (EditAction.ZOOM, 2.0),
    Action.ZOOM_OUT_15: (EditAction.ZOOM, 1.5),
    Action.PAN_LEFT: (EditAction.PAN_LEFT, None),
    Action.PAN_RIGHT: (EditAction.PAN_RIGHT, None),
    Action.PAN_UP: (EditAction.PAN_UP, None),
    Action.PAN_DOWN: (EditAction.PAN_DOWN, None),
    Action.MAKE_SQUARE: (EditAction.SQUARE, None),
}
EDIT_ACTIONS = frozenset({*BUTTON_EDITS, Action.ZOOM_CUSTOM, Action.VARY_REGION})

_ZOOM_IN_PROMPT = re.compile(r"(?:^|\s)(?:--|—)zoom\s+(\S+)", re.IGNORECASE)
_ASPECT_IN_PROMPT = re.compile(r"(?:^|\s)(?:--|—)(?:ar|aspect)\s", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9]+(?:[.,][0-9]+)?|[.,][0-9]+")


def button_edit(action: Action, source: ImageRecord) -> Edit:
    """The edit a Zoom Out, Pan or Make Square button makes of ``source``."""
    kind, zoom = BUTTON_EDITS[action]
    return outpaint(kind, source.sha256, (source.width, source.height), zoom=zoom)


def edit_spec(
    parent: Job,
    source: ImageRecord,
    edit: Edit,
    *,
    mode: SpeedMode,
    request: GenerationRequest | None = None,
    aspect: str | None = None,
) -> JobSpec:
    """The job for ``edit`` of image ``source`` of ``parent`` (with an edited ``request``)."""
    base = request if request is not None else dataclasses.replace(parent.request, seed=None)
    width, height = sdxl_size(edit.canvas)
    sized = dataclasses.replace(
        base,
        mode=mode,
        width=width,
        height=height,
        aspect=aspect or edit_aspect(parent.request.aspect, edit),
        # The source is the image now; image prompts and their structure do not apply.
        image_urls=(),
        control=None,
    )
    return JobSpec(
        kind=JobKind.INPAINT if edit.mask is not None else JobKind.OUTPAINT,
        request=sized,
        cost=GRID_SIZE,
        parent_job_id=parent.id,
        parent_index=source.index,
        strength=EDIT_STRENGTH,
        edit=edit,
    )


def prompt_for_editing(request: GenerationRequest, options: ParserOptions) -> str:
    """The parent's prompt as an edit form shows it: no seed, size, image prompts or mode."""
    plain = dataclasses.replace(
        request,
        seed=None,
        aspect="1:1",
        width=1024,
        height=1024,
        image_urls=(),
        control=None,
        mode=SpeedMode.FAST,
    )
    return render(plain, options=options)


def parse_zoom(text: str) -> float:
    """A zoom factor as typed (``1.5``, ``1,5``, ``--zoom 1.5``); ``PromptError`` otherwise."""
    value = text.strip().removeprefix("--zoom").removeprefix("—zoom").strip().rstrip("xX")
    if not _NUMBER.fullmatch(value):
        raise PromptError(f"zoom must be a number from 1 to 2, like 1.5; got `{text.strip()}`")
    zoom = float(value.replace(",", "."))
    if not 1 < zoom <= 2:
        raise PromptError(f"zoom must be more than 1 and at most 2; got `{text.strip()}`")
    return check_zoom(zoom)


def zoom_from_prompt(text: str) -> tuple[str, float | None]:
    """``text`` without a ``--zoom N`` it may carry, and that zoom (Midjourney's form has one)."""
    match = _ZOOM_IN_PROMPT.search(text)
    if match is None:
        return text, None
    rest = " ".join(f"{text[: match.start()]} {text[match.end() :]}".split())
    return rest, parse_zoom(match[1])


def edited_request(
    text: str, *, options: ParserOptions, defaults: UserSettings
) -> tuple[GenerationRequest, str | None]:
    """The request an edit form's prompt makes, and the ``--ar`` it asks for (if typed)."""
    if not text.strip():
        raise PromptError("the prompt is empty: describe the image")
    requests = parse(text, options=options, defaults=defaults)
    if len(requests) != 1:
        raise PromptError(
            f"an edit paints one prompt, and this one makes {len(requests)} "
            "(permutations or --repeat); remove them"
        )
    request = requests[0]
    if request.image_urls:
        raise PromptError("an edit starts from its image: remove the image URLs from the prompt")
    aspect = None
    if _ASPECT_IN_PROMPT.search(text):
        aspect = parse_aspect(request.aspect)[0]
    return request, aspect
