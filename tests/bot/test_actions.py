"""Button ids and the jobs clicks make, without discord."""

from __future__ import annotations

import pytest

from bot.actions import (
    ENHANCE_STRENGTH,
    MAX_JOB_ID,
    Action,
    Click,
    InvalidButton,
    check_fits,
    decode,
    encode,
    refusal,
    spec_for,
)
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


@pytest.mark.parametrize("job_id", [1, 12, MAX_JOB_ID])
def test_job_ids_up_to_64_bits_round_trip(job_id: int) -> None:
    assert decode(encode(Action.VARIATION, job_id, 0)) == Click(Action.VARIATION, job_id, 0)


@pytest.mark.parametrize(
    ("custom_id", "message"),
    [
        ("imagine:u:12", "not an imagine button: 'imagine:u:12'"),
        ("other:u:12:1", "not an imagine button: 'other:u:12:1'"),
        ("imagine:zoom:12:1", "unknown button action 'zoom'"),
        ("imagine:U:12:1", "unknown button action 'U'"),
        ("imagine:v:12:7", "image index '7' is outside 0-3 (a grid has 4 images)"),
        ("imagine:v:12:10", "image index '10' is outside 0-3"),
        ("imagine:v:12:-1", "image index '-1' is outside 0-3"),
        ("imagine:v:0:1", "job id '0' is not a job number"),
        ("imagine:v:012:1", "job id '012' is not a job number"),
        ("imagine:v:99999999999999999999:1", "job id '99999999999999999999' is not a job number"),
        (f"imagine:v:{MAX_JOB_ID + 1}:1", f"job id {MAX_JOB_ID + 1} is out of range"),
        # Unicode digits are digits to \\d, not to the template.
        ("imagine:v:\u0661\u0662:1", "job id '\u0661\u0662' is not a job number"),
        ("imagine:v:12:\u0663", "image index '\u0663' is outside 0-3"),
        ("imagine:v:12:1\n", "image index '1\\n' is outside 0-3"),
    ],
)
def test_bad_custom_ids_are_refused_saying_what_is_wrong(custom_id: str, message: str) -> None:
    with pytest.raises(InvalidButton) as refused:
        decode(custom_id)
    assert message in str(refused.value)


def test_a_refusal_says_nothing_was_charged() -> None:
    with pytest.raises(InvalidButton) as refused:
        decode("imagine:v:12:7")
    assert refusal(refused.value) == (
        "This button cannot be used: image index '7' is outside 0-3 (a grid has 4 images). "
        "Nothing was queued or charged."
    )


@pytest.mark.parametrize(("index", "job_id"), [(4, 1), (-1, 1), (0, 0), (0, MAX_JOB_ID + 1)])
def test_encode_only_makes_ids_decode_takes(index: int, job_id: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        encode(Action.UPSCALE, job_id, index)


GRID_BUTTONS = [Action.UPSCALE, Action.VARIATION, Action.REROLL]
SINGLE_BUTTONS = [
    Action.UPSCALE_SUBTLE,
    Action.UPSCALE_CREATIVE,
    Action.VARY_SUBTLE,
    Action.VARY_STRONG,
]


@pytest.mark.parametrize("kind", [JobKind.IMAGINE, JobKind.REROLL, JobKind.VARIATION])
@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("index", [0, 3])
def test_every_button_fits_a_grid(kind: JobKind, action: Action, index: int) -> None:
    # A draft grid: E buttons are only on draft and turbo grids.
    draft = GenerationRequest(prompt="a red fox", seed=1234, mode=SpeedMode.DRAFT)
    check_fits(Click(action, 7, index), _job(kind=kind, request=draft))


@pytest.mark.parametrize("mode", [SpeedMode.DRAFT, SpeedMode.TURBO])
@pytest.mark.parametrize(
    ("clicker", "painted"), [(SpeedMode.TURBO, SpeedMode.FAST), (SpeedMode.RELAX, SpeedMode.RELAX)]
)
def test_enhance_re_renders_the_cell_with_the_default_profile_at_its_seed(
    mode: SpeedMode, clicker: SpeedMode, painted: SpeedMode
) -> None:
    parent = _job(request=GenerationRequest(prompt="a red fox", seed=1234, mode=mode))
    spec = spec_for(
        Click(Action.ENHANCE, 7, 2), parent, variation=VariationStrength.STRONG, mode=clicker
    )
    assert spec is not None
    assert (spec.kind, spec.cost, spec.parent_job_id, spec.parent_index) == (
        JobKind.VARIATION,
        4,
        7,
        2,
    )
    assert spec.request.seed == 1236 and spec.request.mode is painted
    assert spec.strength == ENHANCE_STRENGTH == 0.55


def test_enhance_fits_only_a_draft_or_turbo_grid() -> None:
    with pytest.raises(InvalidButton) as refused:
        check_fits(Click(Action.ENHANCE, 7, 0), _job())
    assert str(refused.value) == (
        "E buttons belong to a draft or turbo grid, and job #7 was painted in fast mode"
    )


@pytest.mark.parametrize("action", [*SINGLE_BUTTONS, Action.CANCEL])
def test_single_image_buttons_fit_an_upscale(action: Action) -> None:
    check_fits(Click(action, 7, 0), _job(kind=JobKind.UPSCALE))


@pytest.mark.parametrize(
    ("action", "label"), list(zip(GRID_BUTTONS, ["U", "V", "🔄"], strict=True))
)
def test_grid_buttons_do_not_fit_an_upscale(action: Action, label: str) -> None:
    with pytest.raises(InvalidButton) as refused:
        check_fits(Click(action, 7, 0), _job(kind=JobKind.UPSCALE))
    assert str(refused.value) == (
        f"{label} buttons belong to a grid of 4 images, and job #7 is a single upscale image"
    )


@pytest.mark.parametrize("action", SINGLE_BUTTONS)
def test_an_upscale_has_only_image_one(action: Action) -> None:
    with pytest.raises(InvalidButton, match="job #7 has one image, so there is no image #3"):
        check_fits(Click(action, 7, 2), _job(kind=JobKind.UPSCALE))


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


NEW_GRIDS = [Action.REROLL, Action.VARIATION, Action.VARY_SUBTLE, Action.VARY_STRONG]


@pytest.mark.parametrize("action", NEW_GRIDS)
@pytest.mark.parametrize(
    ("painted", "clicker"),
    [
        (SpeedMode.DRAFT, SpeedMode.FAST),
        (SpeedMode.DRAFT, SpeedMode.RELAX),
        (SpeedMode.DRAFT, SpeedMode.TURBO),
        (SpeedMode.TURBO, SpeedMode.FAST),
        (SpeedMode.TURBO, SpeedMode.RELAX),
    ],
)
@pytest.mark.parametrize("kind", [JobKind.IMAGINE, JobKind.VARIATION])
def test_rerolls_and_variations_of_a_draft_or_turbo_grid_keep_its_profile(
    action: Action, painted: SpeedMode, clicker: SpeedMode, kind: JobKind
) -> None:
    draft_or_turbo = GenerationRequest(prompt="a red fox", seed=1234, mode=painted)
    parent = _job(kind=kind, request=draft_or_turbo, parent_job_id=3, parent_index=1)
    spec = spec_for(Click(action, 7, 1), parent, variation=VariationStrength.STRONG, mode=clicker)
    assert spec is not None and spec.cost == 4
    assert spec.request.mode is painted


@pytest.mark.parametrize("action", NEW_GRIDS)
def test_a_turbo_clicker_rerolls_and_varies_a_default_profile_grid_in_fast_mode(
    action: Action,
) -> None:
    spec = spec_for(
        Click(action, 7, 1), _job(), variation=VariationStrength.STRONG, mode=SpeedMode.TURBO
    )
    assert spec is not None
    assert spec.request.mode is SpeedMode.FAST


@pytest.mark.parametrize("action", [Action.VARY_SUBTLE, Action.VARY_STRONG])
def test_an_upscale_passes_on_no_profile_to_its_variations(action: Action) -> None:
    # Upscales refine with the default profile, whatever mode their request records.
    turbo = GenerationRequest(prompt="a red fox", seed=1234, mode=SpeedMode.TURBO)
    parent = _job(kind=JobKind.UPSCALE, request=turbo, parent_job_id=3, parent_index=1)
    spec = spec_for(
        Click(action, 7, 0), parent, variation=VariationStrength.STRONG, mode=SpeedMode.TURBO
    )
    assert spec is not None
    assert spec.request.mode is SpeedMode.FAST


@pytest.mark.parametrize("action", [Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE])
@pytest.mark.parametrize(
    ("clicker", "mode"),
    [
        (SpeedMode.FAST, SpeedMode.FAST),
        (SpeedMode.RELAX, SpeedMode.RELAX),
        (SpeedMode.TURBO, SpeedMode.FAST),
        (SpeedMode.DRAFT, SpeedMode.FAST),
    ],
)
def test_an_upscale_runs_in_the_clickers_fast_or_relax(
    action: Action, clicker: SpeedMode, mode: SpeedMode
) -> None:
    # It refines with the default profile, so it is queued and shown as that, never as turbo.
    spec = spec_for(Click(action, 7, 0), _job(), variation=VariationStrength.STRONG, mode=clicker)
    assert spec is not None and spec.request.mode is mode


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
