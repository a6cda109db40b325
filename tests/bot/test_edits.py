"""The editing buttons' jobs as plain data: zoom values, edited prompts, specs, rerolls."""

from __future__ import annotations

import pytest

from bot.actions import Action, Click, spec_for
from bot.edits import (
    EDIT_ACTIONS,
    button_edit,
    edit_spec,
    edited_request,
    parse_zoom,
    prompt_for_editing,
    zoom_from_prompt,
)
from bot.prompt import ParserOptions, PromptError
from storage.contract import (
    EditAction,
    GenerationRequest,
    ImageRecord,
    Job,
    JobKind,
    JobStatus,
    SpeedMode,
    UserSettings,
    VariationStrength,
)

OPTIONS = ParserOptions()
SOURCE = ImageRecord(
    index=2, sha256="c" * 64, width=1216, height=832, seed=9, size_bytes=10, path="x", job_id=7
)


def _parent(**fields: object) -> Job:
    values: dict[str, object] = {
        "id": 7,
        "kind": JobKind.IMAGINE,
        "status": JobStatus.SUCCEEDED,
        "user_id": 42,
        "request": GenerationRequest(
            prompt="a bay",
            aspect="3:2",
            width=1216,
            height=832,
            seed=1234,
            image_urls=("https://example.com/a.png",),
        ),
        "seed": 1234,
        "cost": 4,
    }
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "zoom"),
    [("1.5", 1.5), (" 2 ", 2.0), ("1,25", 1.25), ("--zoom 1.75", 1.75), ("2x", 2.0)],
)
def test_zoom_values_people_type(text: str, zoom: float) -> None:
    assert parse_zoom(text) == zoom


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("two", "zoom must be a number from 1 to 2, like 1.5; got `two`"),
        ("1", "more than 1 and at most 2; got `1`"),
        ("2.01", "more than 1 and at most 2; got `2.01`"),
        ("", "got ``"),
    ],
)
def test_bad_zoom_values_say_what_is_allowed(text: str, message: str) -> None:
    with pytest.raises(PromptError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_zoom(text)


def test_a_zoom_in_the_prompt_is_taken_out_and_used() -> None:
    assert zoom_from_prompt("a bay --zoom 1.5 --no boats") == ("a bay --no boats", 1.5)
    assert zoom_from_prompt("a bay —zoom 2") == ("a bay", 2.0)
    assert zoom_from_prompt("a bay") == ("a bay", None)


def test_the_form_shows_the_prompt_without_seed_size_or_image_prompts() -> None:
    request = _parent().request
    assert prompt_for_editing(request, OPTIONS) == "a bay"


def test_edited_prompts_make_one_request_and_may_ask_for_a_shape() -> None:
    request, aspect = edited_request(
        "a bay at night --ar 16:9", options=OPTIONS, defaults=UserSettings()
    )
    assert (request.prompt, aspect) == ("a bay at night", "16:9")
    assert edited_request("a bay", options=OPTIONS, defaults=UserSettings())[1] is None
    with pytest.raises(PromptError, match="makes 3"):
        edited_request("a {red, green, blue} bay", options=OPTIONS, defaults=UserSettings())


def test_a_button_edit_spec_is_a_grid_sized_to_its_canvas_from_that_image() -> None:
    parent = _parent()
    edit = button_edit(Action.PAN_LEFT, SOURCE)
    spec = edit_spec(parent, SOURCE, edit, mode=SpeedMode.TURBO)
    assert (spec.kind, spec.cost, spec.parent_job_id, spec.parent_index) == (
        JobKind.OUTPAINT,
        4,
        7,
        2,
    )
    assert spec.edit == edit and edit.canvas == (1824, 832) and edit.source == SOURCE.sha256
    request = spec.request
    assert (request.width, request.height, request.aspect) == (1536, 704, "9:4")
    assert (request.seed, request.mode, request.image_urls) == (None, SpeedMode.TURBO, ())
    assert request.prompt == "a bay"


def test_every_edit_button_is_an_edit_action_and_spec_for_leaves_them_to_bot_edits() -> None:
    assert {
        Action.ZOOM_OUT_2,
        Action.ZOOM_OUT_15,
        Action.ZOOM_CUSTOM,
        Action.PAN_LEFT,
        Action.PAN_RIGHT,
        Action.PAN_UP,
        Action.PAN_DOWN,
        Action.MAKE_SQUARE,
        Action.VARY_REGION,
    } == EDIT_ACTIONS
    for action in EDIT_ACTIONS:
        with pytest.raises(ValueError, match=r"bot\.edits makes its job"):
            spec_for(
                Click(action, 7, 0),
                _parent(),
                variation=VariationStrength.STRONG,
                mode=SpeedMode.FAST,
            )


def test_rerolling_an_edit_repeats_it() -> None:
    edit = button_edit(Action.MAKE_SQUARE, SOURCE)
    grid = edit_spec(_parent(), SOURCE, edit, mode=SpeedMode.FAST)
    job = _parent(
        id=8,
        kind=grid.kind,
        request=grid.request.with_seed(5),
        parent_job_id=7,
        parent_index=2,
        strength=grid.strength,
        edit=grid.edit,
    )
    again = spec_for(
        Click(Action.REROLL, 8, 0), job, variation=VariationStrength.STRONG, mode=SpeedMode.RELAX
    )
    assert again is not None and again.edit == edit and edit.action is EditAction.SQUARE
    assert (again.kind, again.parent_job_id, again.parent_index) == (JobKind.OUTPAINT, 7, 2)
    assert (again.request.seed, again.request.mode, again.request.aspect) == (
        None,
        SpeedMode.RELAX,
        "1:1",
    )
