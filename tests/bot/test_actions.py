"""Button ids and the jobs clicks make, without discord."""

from __future__ import annotations

import pytest

from bot.actions import Action, Click, decode, encode, spec_for
from storage.contract import (
    GenerationRequest,
    Job,
    JobKind,
    JobStatus,
    SpeedMode,
    VariationStrength,
)


def _job(**fields: object) -> Job:
    values: dict[str, object] = {
        "id": 7,
        "kind": JobKind.IMAGINE,
        "status": JobStatus.SUCCEEDED,
        "user_id": 42,
        "request": GenerationRequest(prompt="a red fox", seed=1234),
        "seed": 1234,
        "cost": 4,
        "input_images": ("ab" * 32,),
    }
    values.update(fields)
    return Job(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("action", list(Action))
def test_custom_ids_round_trip(action: Action) -> None:
    assert decode(encode(action, 123456789012345678, 3)) == Click(action, 123456789012345678, 3)


@pytest.mark.parametrize(
    ("custom_id", "message"),
    [
        ("imagine:u:12", "not an imagine button"),
        ("imagine:zoom:12:1", "unknown button action 'zoom'"),
        ("other:u:12:1", "not an imagine button"),
        ("imagine:u:12:10", "not an imagine button"),
    ],
)
def test_bad_custom_ids_are_refused(custom_id: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(custom_id)


def test_index_must_fit_one_digit() -> None:
    with pytest.raises(ValueError, match="0-9, got 10"):
        encode(Action.UPSCALE, 1, 10)


def test_u_and_cancel_make_no_job() -> None:
    parent = _job()
    for action in (Action.UPSCALE, Action.CANCEL):
        assert (
            spec_for(
                Click(action, parent.id, 1),
                parent,
                variation=VariationStrength.STRONG,
                mode=SpeedMode.FAST,
            )
            is None
        )


@pytest.mark.parametrize(
    ("action", "setting", "strength"),
    [
        (Action.VARIATION, VariationStrength.STRONG, 0.85),
        (Action.VARIATION, VariationStrength.SUBTLE, 0.5),
        (Action.VARY_SUBTLE, VariationStrength.STRONG, 0.5),
        (Action.VARY_STRONG, VariationStrength.SUBTLE, 0.85),
    ],
)
def test_variations_img2img_from_the_chosen_image(
    action: Action, setting: VariationStrength, strength: float
) -> None:
    parent = _job()
    spec = spec_for(Click(action, parent.id, 2), parent, variation=setting, mode=SpeedMode.FAST)
    assert spec is not None
    assert spec.kind is JobKind.VARIATION
    assert (spec.parent_job_id, spec.parent_index, spec.strength) == (7, 2, strength)
    assert spec.cost == 4
    assert spec.request.seed is None  # a fresh seed is chosen at enqueue
    assert spec.request.prompt == "a red fox"


def test_reroll_keeps_the_request_and_image_prompts_but_not_the_seed() -> None:
    parent = _job()
    spec = spec_for(
        Click(Action.REROLL, parent.id, 0),
        parent,
        variation=VariationStrength.STRONG,
        mode=SpeedMode.RELAX,
    )
    assert spec is not None
    assert spec.kind is JobKind.REROLL
    assert spec.request.seed is None
    assert spec.request.mode is SpeedMode.RELAX
    assert spec.input_images == parent.input_images
    assert spec.parent_job_id is None


def test_reroll_of_a_variation_varies_the_same_source_again() -> None:
    parent = _job(kind=JobKind.VARIATION, parent_job_id=3, parent_index=1, strength=0.5)
    spec = spec_for(
        Click(Action.REROLL, parent.id, 0),
        parent,
        variation=VariationStrength.STRONG,
        mode=SpeedMode.FAST,
    )
    assert spec is not None
    assert (spec.kind, spec.parent_job_id, spec.parent_index, spec.strength) == (
        JobKind.VARIATION,
        3,
        1,
        0.5,
    )


@pytest.mark.parametrize(
    ("action", "strength"), [(Action.UPSCALE_SUBTLE, 0.2), (Action.UPSCALE_CREATIVE, 0.4)]
)
def test_upscales_cost_one_image(action: Action, strength: float) -> None:
    parent = _job()
    spec = spec_for(
        Click(action, parent.id, 3), parent, variation=VariationStrength.STRONG, mode=SpeedMode.FAST
    )
    assert spec is not None
    assert (spec.kind, spec.cost, spec.parent_index, spec.strength) == (
        JobKind.UPSCALE,
        1,
        3,
        strength,
    )
