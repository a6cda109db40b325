"""The shared stylize / chaos / weird / raw / stop mapping (``storage.sampling``)."""

from __future__ import annotations

import numpy as np
import pytest

from bot.prompt import parse
from storage.sampling import guidance_scale, sampling_plan, style_suffix


@pytest.mark.parametrize(
    ("stylize", "raw", "guidance"),
    [
        (0, False, 4.0),
        (50, False, 5.5),
        (100, False, 7.0),
        (550, False, 8.0),
        (1000, False, 9.0),
        (0, True, 3.0),
        (100, True, 5.5),
        (1000, True, 7.5),
    ],
)
def test_guidance_scale(stylize: int, raw: bool, guidance: float) -> None:
    assert guidance_scale(stylize, raw) == guidance


def test_guidance_grows_with_stylize_and_raw_lowers_it() -> None:
    values = [guidance_scale(s, False) for s in range(0, 1001, 10)]
    assert values == sorted(values)
    assert all(guidance_scale(s, True) < guidance_scale(s, False) for s in range(0, 1001, 10))


@pytest.mark.parametrize(
    ("stylize", "raw", "suffix"),
    [
        (0, False, ""),
        (30, False, ", detailed"),
        (100, False, ", highly detailed, beautiful lighting"),
        (400, False, ", highly detailed, dramatic lighting, masterpiece"),
        (
            1000,
            False,
            ", highly detailed, dramatic lighting, masterpiece, intricate, award-winning",
        ),
        (1000, True, ""),
    ],
)
def test_style_suffix(stylize: int, raw: bool, suffix: str) -> None:
    assert style_suffix(stylize, raw) == suffix


def test_plan_of_a_default_prompt() -> None:
    plan = sampling_plan(parse("a red fox")[0])
    assert plan.guidance_scale == 7.0
    assert plan.segments == (("a red fox, highly detailed, beautiful lighting", 1.0),)
    assert plan.negative_prompt == ""
    assert (plan.chaos_noise, plan.weird_scale) == (0.7, 0.0)
    assert (plan.steps, plan.steps_run, plan.tile) == (30, 30, False)


def test_plan_of_a_multi_prompt() -> None:
    plan = sampling_plan(parse("space::3 ship::-1 --raw --no stars --stop 50 --q 2 --tile")[0])
    assert plan.segments == (("space", 1.5), ("ship", -0.5))
    assert plan.negative_prompt == "stars"
    assert (plan.guidance_scale, plan.style_suffix) == (5.5, "")
    assert (plan.steps, plan.steps_run, plan.tile) == (60, 30, True)


@pytest.mark.parametrize(
    ("text", "steps_run"),
    [("a --steps 1 --stop 10", 1), ("a --steps 15 --stop 50", 8), ("a --stop 99", 30)],
)
def test_steps_run(text: str, steps_run: int) -> None:
    assert sampling_plan(parse(text)[0]).steps_run == steps_run


def test_weird_scale() -> None:
    assert sampling_plan(parse("a --weird 1500")[0]).weird_scale == pytest.approx(0.1)
    assert sampling_plan(parse("a --weird 3000")[0]).weird_scale == pytest.approx(0.2)


def _grid_latents(chaos: int, seed: int) -> np.ndarray:
    """Initial latents of a grid built exactly as the module docstring tells the engine."""
    plan = sampling_plan(parse(f"a --chaos {chaos}")[0])
    own = [np.random.default_rng(seed + i).standard_normal(4 * 32 * 32) for i in range(4)]
    latents = []
    for index in range(4):
        anchor_weight, own_weight = plan.latent_mix(index)
        latents.append(anchor_weight * own[0] + own_weight * own[index])
    return np.stack(latents)


def _spread(latents: np.ndarray) -> float:
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    return float(np.mean([np.linalg.norm(latents[i] - latents[j]) for i, j in pairs]))


def test_higher_chaos_spreads_the_grid_further() -> None:
    spreads = [_spread(_grid_latents(chaos, seed=1234)) for chaos in (0, 25, 50, 75, 100)]
    assert spreads == sorted(spreads)
    assert spreads[-1] > 1.2 * spreads[0]
    # Chaos 0 still gives four different starting points, and image 0 never depends on chaos.
    assert spreads[0] > 0.5 * spreads[-1]
    assert np.array_equal(_grid_latents(0, 1234)[0], _grid_latents(100, 1234)[0])


def test_latent_mix_keeps_unit_variance() -> None:
    latents = _grid_latents(30, seed=7)
    assert np.allclose(latents.std(axis=1), 1.0, atol=0.05)
