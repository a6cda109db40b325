"""Edit geometry (pure) and edit jobs through the queue on both databases."""

from __future__ import annotations

import math

import pytest

from storage.contract import Edit, EditAction, GenerationRequest, JobKind, JobSpec
from storage.edits import check_edit, describe, edit_aspect, outpaint, region, sdxl_size
from storage.errors import InvalidValue
from storage.queue import JobQueue

KEY = "a" * 64
MASK = "b" * 64


@pytest.mark.parametrize(
    ("action", "zoom", "size", "canvas", "offset"),
    [
        (EditAction.ZOOM, 2.0, (1024, 1024), (2048, 2048), (512, 512)),
        (EditAction.ZOOM, 1.5, (1216, 832), (1824, 1248), (304, 208)),
        (EditAction.ZOOM, 1.25, (64, 64), (80, 80), (8, 8)),
        # A pan adds half the source's side in that direction; the source keeps its pixels.
        (EditAction.PAN_LEFT, None, (1216, 832), (1824, 832), (608, 0)),
        (EditAction.PAN_RIGHT, None, (1216, 832), (1824, 832), (0, 0)),
        (EditAction.PAN_UP, None, (1216, 832), (1216, 1248), (0, 416)),
        (EditAction.PAN_DOWN, None, (1216, 832), (1216, 1248), (0, 0)),
        (EditAction.SQUARE, None, (1344, 768), (1344, 1344), (0, 288)),
        (EditAction.SQUARE, None, (768, 1344), (1344, 1344), (288, 0)),
    ],
)
def test_outpaint_canvases(
    action: EditAction,
    zoom: float | None,
    size: tuple[int, int],
    canvas: tuple[int, int],
    offset: tuple[int, int],
) -> None:
    edit = outpaint(action, KEY, size, zoom=zoom)
    assert (edit.canvas, edit.offset, edit.source_size) == (canvas, offset, size)
    check_edit(edit)
    assert Edit.from_dict(edit.to_dict()) == edit


@pytest.mark.parametrize(
    ("canvas", "size"),
    [
        ((1024, 1024), (1024, 1024)),
        ((2048, 2048), (1024, 1024)),
        ((1216, 832), (1216, 832)),  # an SDXL size stays as it is
        ((2432, 1664), (1216, 832)),  # and so does twice one
        ((1824, 832), (1536, 704)),
        ((1344, 1344), (1024, 1024)),
        ((2048, 512), (2048, 512)),
    ],
)
def test_edits_paint_at_an_sdxl_size(canvas: tuple[int, int], size: tuple[int, int]) -> None:
    assert sdxl_size(canvas) == size


@pytest.mark.parametrize("canvas", [(96, 64), (1824, 1248), (83, 83), (3000, 1000), (640, 2500)])
def test_sdxl_sizes_are_about_a_megapixel_in_multiples_of_64(canvas: tuple[int, int]) -> None:
    width, height = sdxl_size(canvas)
    assert width % 64 == 0 and height % 64 == 0
    assert 0.8 <= width * height / 2**20 <= 1.2
    assert abs(math.log(width / height) - math.log(canvas[0] / canvas[1])) < 0.05


def test_bad_edits_are_refused_with_what_is_allowed() -> None:
    with pytest.raises(InvalidValue, match="already square"):
        outpaint(EditAction.SQUARE, KEY, (64, 64))
    with pytest.raises(InvalidValue, match=r"zoom must be a number from 1 to 2, got 2\.5"):
        outpaint(EditAction.ZOOM, KEY, (64, 64), zoom=2.5)
    with pytest.raises(InvalidValue, match="Zoom Out 1x adds nothing"):
        outpaint(EditAction.ZOOM, KEY, (64, 64), zoom=1.0)
    with pytest.raises(InvalidValue, match="needs a zoom factor"):
        outpaint(EditAction.ZOOM, KEY, (64, 64))
    # 3:1 panned sideways would be 4.5:1.
    with pytest.raises(InvalidValue, match=r"Pan Left would make the image 9:2; .* 4:1"):
        outpaint(EditAction.PAN_LEFT, KEY, (1728, 576))
    with pytest.raises(InvalidValue, match="does not fit"):
        check_edit(Edit(EditAction.ZOOM, KEY, (64, 64), (80, 80), (20, 0), 1.25))
    with pytest.raises(InvalidValue, match="needs a mask"):
        check_edit(Edit(EditAction.REGION, KEY, (64, 64), (64, 64)))


def test_edited_aspect_and_names() -> None:
    pan_left = outpaint(EditAction.PAN_LEFT, KEY, (1216, 832))
    assert edit_aspect("3:2", pan_left) == "9:4"
    assert edit_aspect("3:2", outpaint(EditAction.PAN_UP, KEY, (1216, 832))) == "1:1"
    assert edit_aspect("16:9", outpaint(EditAction.SQUARE, KEY, (1344, 768))) == "1:1"
    assert edit_aspect("4:3", outpaint(EditAction.ZOOM, KEY, (1152, 896), zoom=2)) == "4:3"
    assert describe(pan_left) == "Pan Left"
    assert describe(outpaint(EditAction.ZOOM, KEY, (64, 64), zoom=1.5)) == "Zoom Out 1.5x"
    assert describe(region(KEY, (64, 64), MASK)) == "Vary (Region)"


async def test_edit_jobs_keep_their_edit_through_the_queue(queue: JobQueue) -> None:
    zoom = outpaint(EditAction.ZOOM, KEY, (64, 64), zoom=2.0)
    paint = region(KEY, (64, 64), MASK)
    request = GenerationRequest(prompt="a harbour", width=1024, height=1024)
    specs = [
        JobSpec(JobKind.OUTPAINT, request, cost=4, strength=0.9, edit=zoom),
        JobSpec(JobKind.INPAINT, request, cost=4, strength=0.9, edit=paint),
    ]
    first, second = await queue.enqueue(7, specs, interaction_id=77)
    assert (first.kind, first.edit, first.strength) == (JobKind.OUTPAINT, zoom, 0.9)
    assert (second.kind, second.edit) == (JobKind.INPAINT, paint)
    claimed = await queue.claim("w1", 2)
    assert sorted((job.id, job.edit) for job in claimed) == [
        (first.id, zoom),
        (second.id, paint),
    ]


async def test_an_edit_job_without_its_edit_is_refused(queue: JobQueue) -> None:
    request = GenerationRequest(prompt="a harbour")
    with pytest.raises(InvalidValue, match="outpaint job needs edit"):
        await queue.enqueue(7, [JobSpec(JobKind.OUTPAINT, request, cost=4)], interaction_id=1)
    bad = Edit(EditAction.ZOOM, KEY, (64, 64), (64, 64), (0, 0), 3.0)
    with pytest.raises(InvalidValue, match="zoom must be"):
        await queue.enqueue(
            7, [JobSpec(JobKind.OUTPAINT, request, cost=4, edit=bad)], interaction_id=2
        )
    assert await queue.pending_deliveries() == []
