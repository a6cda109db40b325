"""Edits on the tiny SDXL: canvas sizes, where the source lands, kept pixels, masks, seeds.

The tiny model paints at 64 px for 1024 px requests (``scale_size``), so a 64x64 source zoomed
out 2x lands in the middle 32x32 of a 64x64 render. Its seam is one latent cell (8 px).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gpu_worker.editing import seam_width
from gpu_worker.engine import Engine
from gpu_worker.errors import InvalidTask
from gpu_worker.task import RenderResult, RenderTask
from storage.contract import Edit, EditAction, JobKind
from storage.edits import outpaint, region, sdxl_size
from tests.worker.conftest import pixels, request

SOURCE_KEY = "0" * 64
SEAM = 8
TOLERANCE = 1  # levels of 255; the README states the same


def source_image(size: tuple[int, int] = (64, 64), seed: int = 5) -> Image.Image:
    """A smooth random picture: noise, blurred, so a resize keeps its structure."""
    rng = np.random.default_rng(seed)
    small = (rng.random((size[1] // 8 + 1, size[0] // 8 + 1, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def edit_task(edit: Edit, source: Image.Image, seed: int = 3, **changes: Any) -> RenderTask:
    width, height = sdxl_size(edit.canvas)
    kind = JobKind.INPAINT if edit.mask is not None else JobKind.OUTPAINT
    values: dict[str, Any] = {
        "request": request("a harbour at dawn", width=width, height=height),
        "seed": seed,
        "kind": kind,
        "init_images": (source,),
        "strength": 0.9,
        "edit": edit,
    }
    values.update(changes)
    return RenderTask(**values)


def fitted(source: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    left, top, right, bottom = box
    return pixels(source.resize((right - left, bottom - top), Image.Resampling.LANCZOS))


def test_the_tiny_model_seam_is_one_latent_cell_and_sdxl_gets_32_px() -> None:
    assert seam_width(64, 8) == SEAM
    assert seam_width(1024, 8) == 32


# action, zoom, source size, render size, where the source lands, the part kept exactly
CASES = [
    (EditAction.ZOOM, 2.0, (64, 64), (64, 64), (16, 16, 48, 48), (24, 24, 40, 40)),
    (EditAction.ZOOM, 1.5, (64, 64), (64, 64), (11, 11, 53, 53), (19, 19, 45, 45)),
    # 96x64 canvas painted at 1280x832, i.e. 80x56: the source fills the right 5/6.
    (EditAction.PAN_LEFT, None, (64, 64), (80, 56), (27, 1, 80, 55), (35, 9, 80, 47)),
    (EditAction.PAN_RIGHT, None, (64, 64), (80, 56), (0, 1, 53, 55), (0, 9, 45, 47)),
    (EditAction.PAN_UP, None, (64, 64), (56, 80), (1, 27, 55, 80), (9, 35, 47, 80)),
    (EditAction.PAN_DOWN, None, (64, 64), (56, 80), (1, 0, 55, 53), (9, 0, 47, 45)),
    # 16:9 at the tiny scale (88x48) made square: 88x88, painted at 64x64.
    (EditAction.SQUARE, None, (88, 48), (64, 64), (0, 15, 64, 49), (0, 23, 64, 41)),
]


@pytest.mark.parametrize(("action", "zoom", "size", "render", "box", "kept"), CASES)
def test_each_edit_grows_the_canvas_keeps_the_source_and_paints_the_rest(
    engine: Engine,
    action: EditAction,
    zoom: float | None,
    size: tuple[int, int],
    render: tuple[int, int],
    box: tuple[int, int, int, int],
    kept: tuple[int, int, int, int],
) -> None:
    source = source_image(size)
    edit = outpaint(action, SOURCE_KEY, size, zoom=zoom)
    result = engine.render(edit_task(edit, source))

    assert (result.width, result.height) == render
    assert len(result.images) == 4
    assert all(image.size == render for image in result.images)
    left, top, right, bottom = box
    expected = fitted(source, box)
    k_left, k_top, k_right, k_bottom = kept
    inner = expected[k_top - top : k_bottom - top, k_left - left : k_right - left]
    outside = np.ones((render[1], render[0]), dtype=bool)
    outside[top:bottom, left:right] = False
    for image in result.images:
        got = pixels(image)
        # Beyond the seam the source survives, resized into its box.
        assert np.abs(got[k_top:k_bottom, k_left:k_right] - inner).max() <= TOLERANCE
        # The new area is painted: not a copy of the nearest source edge.
        assert got[outside].std() > 1.0
    # Each image of the grid has its own seed, so their new areas differ.
    first, second = (pixels(image)[outside] for image in result.images[:2])
    assert np.abs(first - second).mean() > 1.0


def test_the_seam_blends_the_fill_into_the_source(engine: Engine) -> None:
    source = source_image()
    result = engine.render(
        edit_task(outpaint(EditAction.ZOOM, SOURCE_KEY, (64, 64), zoom=2.0), source)
    )
    expected = fitted(source, (16, 16, 48, 48))
    got = pixels(result.images[0])[16:48, 16:48]
    diff = np.abs(got - expected).max(axis=2)
    # The outermost ring of the source is mostly repainted; the ring just inside the seam
    # barely changes; everything further in is the source.
    assert diff[0, :].mean() > diff[SEAM - 1, SEAM - 1 : -SEAM + 1].mean()
    assert diff[SEAM:-SEAM, SEAM:-SEAM].max() <= TOLERANCE


def _render(engine: Engine, edit: Edit, source: Image.Image, **changes: Any) -> RenderResult:
    return engine.render(edit_task(edit, source, **changes))


def test_same_seed_same_edit_identical_and_a_new_seed_only_changes_the_new_area(
    engine: Engine,
) -> None:
    source = source_image()
    edit = outpaint(EditAction.PAN_RIGHT, SOURCE_KEY, (64, 64))
    first = _render(engine, edit, source, seed=21)
    again = _render(engine, edit, source, seed=21)
    other = _render(engine, edit, source, seed=22)
    for one, two in zip(first.images, again.images, strict=True):
        assert np.array_equal(pixels(one), pixels(two))
    a, c = pixels(first.images[0]), pixels(other.images[0])
    assert np.array_equal(a[9:47, 0:45], c[9:47, 0:45])  # the kept source
    assert np.abs(a[:, 53:] - c[:, 53:]).mean() > 1.0  # the new strip
    # Image i does not depend on the batch: rendered alone it is the grid's image i (up to
    # float rounding in batched convolutions, as for img2img).
    alone = engine.render(edit_task(edit, source, seed=21, indices=(2,)))
    assert np.abs(pixels(alone.images[0]) - pixels(first.images[2])).max() <= 1


def region_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def test_vary_region_repaints_only_the_masked_part(engine: Engine) -> None:
    source = source_image()
    mask = region_mask((64, 64), (8, 8, 32, 40))
    edit = region(SOURCE_KEY, (64, 64), "1" * 64)
    result = engine.render(edit_task(edit, source, mask=mask))
    assert (result.width, result.height) == (64, 64)
    original = pixels(source)
    far = np.ones((64, 64), dtype=bool)
    far[8 - SEAM : 40 + SEAM, 8 - SEAM : 32 + SEAM] = False
    for image in result.images:
        got = pixels(image)
        assert np.abs(got[far] - original[far]).max() <= TOLERANCE
        assert np.abs(got[8:40, 8:32] - original[8:40, 8:32]).mean() > 1.0


def test_edits_refuse_what_they_cannot_paint(engine: Engine) -> None:
    source = source_image()
    edit = region(SOURCE_KEY, (64, 64), "1" * 64)
    with pytest.raises(InvalidTask, match="needs its mask"):
        engine.render(edit_task(edit, source))
    with pytest.raises(InvalidTask, match="mask is 32x32 but the image is 64x64"):
        engine.render(edit_task(edit, source, mask=region_mask((32, 32), (0, 0, 8, 8))))
    with pytest.raises(InvalidTask, match="nothing to paint"):
        engine.render(edit_task(edit, source, mask=Image.new("L", (64, 64), 0)))
    zoom = outpaint(EditAction.ZOOM, SOURCE_KEY, (64, 64), zoom=2.0)
    with pytest.raises(InvalidTask, match="source image is 32x32"):
        engine.render(edit_task(zoom, source.resize((32, 32))))
    with pytest.raises(InvalidTask, match="strength"):
        engine.render(edit_task(zoom, source, strength=None))
    with pytest.raises(InvalidTask, match="needs its edit"):
        engine.render(replace(edit_task(zoom, source), edit=None))
