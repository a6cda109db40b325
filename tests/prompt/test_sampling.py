"""The shared stylize / chaos / weird / raw / stop mapping (``storage.sampling``)."""

from __future__ import annotations

import numpy as np
import pytest

from bot.prompt import parse
from storage.sampling import (
    bilinear_std,
    composition_grid,
    guidance_scale,
    sampling_plan,
    style_suffix,
)


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
    assert (plan.chaos_boost, plan.weird_scale) == (0.0, 0.0)
    assert plan.composition_amplitude(128, 128, 128) == 0.0
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


@pytest.mark.parametrize(("chaos", "boost"), [(0, 0.0), (25, 0.5), (50, 1.0), (100, 2.0)])
def test_chaos_boost(chaos: int, boost: float) -> None:
    assert sampling_plan(parse(f"a --chaos {chaos}")[0]).chaos_boost == pytest.approx(boost)


@pytest.mark.parametrize(
    ("latent", "native", "grid"),
    [
        ((128, 128), 128, (4, 4)),  # SDXL 1024x1024: cells of 256 px
        ((168, 96), 128, (5, 3)),  # SDXL 16:9, 1344x768
        ((72, 216), 128, (2, 7)),  # SDXL 1:3, 576x1728
        ((8, 8), 8, (4, 4)),  # a 64 px model
        ((3, 1), 128, (1, 1)),  # never fewer than one cell
    ],
)
def test_composition_grid(latent: tuple[int, int], native: int, grid: tuple[int, int]) -> None:
    assert composition_grid(*latent, native) == grid


def test_composition_grid_refuses_empty_latents() -> None:
    with pytest.raises(ValueError, match="latent sides must be positive, got 0x8"):
        composition_grid(0, 8, 8)


def test_composition_amplitude_is_relative_to_the_cell_size() -> None:
    plan = sampling_plan(parse("a --chaos 100")[0])
    # SDXL 1024x1024: 4x4 cells of 32x32 latents; white noise averages to 1/32 over a cell.
    assert plan.composition_amplitude(128, 128, 128) == pytest.approx(2 / 32)
    assert plan.composition_amplitude(8, 8, 8) == pytest.approx(2 / 2)
    half = sampling_plan(parse("a --chaos 50")[0])
    assert half.composition_amplitude(128, 128, 128) == pytest.approx(1 / 32)


def test_bilinear_std_matches_interpolated_normals() -> None:
    size, cells = 11, 4
    stds = bilinear_std(size, cells)
    assert stds[0] == stds[-1] == 1.0
    rng = np.random.default_rng(5)
    corners = rng.standard_normal((20_000, cells + 1))
    positions = np.arange(size) * cells / (size - 1)
    interpolated = np.stack([np.interp(positions, np.arange(cells + 1), c) for c in corners])
    assert np.allclose(interpolated.std(axis=0), stds, atol=0.02)
    assert bilinear_std(1, 3) == (1.0,)
    with pytest.raises(ValueError, match="size 0"):
        bilinear_std(0, 1)


def _start(chaos: int, seed: int, side: int = 32, native: int = 32) -> np.ndarray:
    """One image's starting latents built exactly as the module docstring tells the engine."""
    plan = sampling_plan(parse(f"a --chaos {chaos}")[0])
    rng = np.random.default_rng(seed)  # stands for the generator seeded seed + i
    white = rng.standard_normal((4, side, side))
    amplitude = plan.composition_amplitude(side, side, native)
    if amplitude == 0:
        return white
    across, down = composition_grid(side, side, native)
    corners = rng.standard_normal((4, down + 1, across + 1))
    ys, xs = np.arange(side) * down / (side - 1), np.arange(side) * across / (side - 1)
    rows = np.stack([[np.interp(xs, np.arange(across + 1), r) for r in c] for c in corners])
    smooth = np.stack(
        [np.stack([np.interp(ys, np.arange(down + 1), col) for col in c.T], axis=1) for c in rows]
    )
    composition = smooth / np.outer(bilinear_std(side, down), bilinear_std(side, across))
    return np.asarray((white + amplitude * composition) / np.sqrt(1 + amplitude**2))


def _layout_spread(starts: list[np.ndarray], cell: int = 8) -> float:
    """Mean distance between the starts' block means (what sets layout, not texture)."""
    blocks = [s.reshape(4, s.shape[1] // cell, cell, -1, cell).mean(axis=(2, 4)) for s in starts]
    pairs = [(i, j) for i in range(len(blocks)) for j in range(i + 1, len(blocks))]
    return float(np.mean([np.abs(blocks[i] - blocks[j]).mean() for i, j in pairs]))


def test_more_chaos_spreads_the_layout_of_independent_starts() -> None:
    spreads = [
        _layout_spread([_start(chaos, seed) for seed in range(40)])
        for chaos in (0, 25, 50, 75, 100)
    ]
    assert spreads == sorted(spreads)
    # Block means of white noise vary by 1/8 over 8x8 blocks; chaos 100 makes that ~1.8x.
    assert spreads[-1] > 1.6 * spreads[0], spreads
    assert np.array_equal(_start(0, 3), np.random.default_rng(3).standard_normal((4, 32, 32)))


@pytest.mark.parametrize("chaos", [0, 40, 100])
def test_starts_keep_unit_variance_everywhere(chaos: int) -> None:
    # A 64 px model: 2x2-latent cells, so at chaos 100 half the variance is composition noise
    # and a missing normalisation would show as 0.75 variance between corners.
    starts = np.stack([_start(chaos, seed, side=8, native=8) for seed in range(2000)])
    per_position = starts.reshape(-1, 8, 8).std(axis=0)
    assert np.allclose(per_position, 1.0, atol=0.04), per_position
