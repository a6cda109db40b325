"""Zoom Out, Pan, Make Square and Vary (Region) as canvases for the SDXL inpainting pipeline.

The stored edit (``storage.contract.Edit``, geometry in ``storage.edits``) says where the source
sits on a canvas and, for a region edit, which of its pixels to repaint. At the render size the
canvas is scaled to fit and centred; the source is resized (Lanczos) into its box and every
pixel outside the box, or under the region mask, is *new*.

- The starting image continues the source: the box is extended to the whole canvas by repeating
  its edge pixels, blurred, and the new area takes that blur (under a region mask, the blurred
  source), so the fill starts from the colours at the seam.
- The pipeline repaints the new area grown by a seam of ``seam_width`` pixels (32 at SDXL's
  1024 px, at least one latent cell), so the fill can blend into the image.
- The result is composited over the starting image with a feathered weight: 1 on new pixels,
  falling linearly to 0 across the seam (by chessboard distance), 0 beyond it. Pixels farther
  than the seam from any new pixel are the resized source's exactly.

Pillow and numpy only (no torch): the masks are made once per render and reused by every image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from gpu_worker.errors import InvalidTask
from gpu_worker.task import RenderTask
from storage.contract import Edit, JobKind

# The seam at 1024 px, scaled with the model's native resolution.
SEAM_AT_1024 = 32
# The fill's blur radius as a share of the render's shorter side.
FILL_BLUR = 1 / 16
MASK_THRESHOLD = 128


def seam_width(native: int, multiple: int) -> int:
    """Pixels of the source the fill may blend over: 32 at 1024 px, at least ``multiple``."""
    seam = SEAM_AT_1024 * native / 1024
    return max(multiple, math.ceil(seam / multiple) * multiple)


@dataclass(frozen=True)
class Layout:
    """Where the source lands in the render: ``box`` is (left, top, right, bottom)."""

    size: tuple[int, int]
    box: tuple[int, int, int, int]

    @property
    def box_size(self) -> tuple[int, int]:
        """Width and height of the source in the render."""
        left, top, right, bottom = self.box
        return right - left, bottom - top


def layout(edit: Edit, size: tuple[int, int]) -> Layout:
    """The canvas of ``edit`` fitted (uniform scale, centred) into a render of ``size``."""
    width, height = size
    canvas_w, canvas_h = edit.canvas
    scale = min(width / canvas_w, height / canvas_h)
    pad_x = (width - canvas_w * scale) / 2
    pad_y = (height - canvas_h * scale) / 2
    (x, y), (source_w, source_h) = edit.offset, edit.source_size
    left, top = round(pad_x + x * scale), round(pad_y + y * scale)
    right = min(width, round(pad_x + (x + source_w) * scale))
    bottom = min(height, round(pad_y + (y + source_h) * scale))
    if right - left < 1 or bottom - top < 1:
        raise InvalidTask(
            f"a {source_w}x{source_h} source on a {canvas_w}x{canvas_h} canvas is too small "
            f"to place in a {width}x{height} render"
        )
    return Layout((width, height), (max(0, left), max(0, top), right, bottom))


@dataclass(frozen=True)
class Prepared:
    """One edit at its render size: the pipeline's inputs and how to composite its outputs."""

    layout: Layout
    init: Image.Image
    mask: Image.Image
    # (H, W, 1) weight of the painted image in the result.
    alpha: np.ndarray = field(repr=False)
    new: np.ndarray = field(repr=False)

    def composite(self, painted: Image.Image) -> Image.Image:
        """``painted`` on the new area and seam, the source everywhere else."""
        if painted.size != self.layout.size:
            painted = painted.resize(self.layout.size, Image.Resampling.LANCZOS)
        base = np.asarray(self.init, dtype=np.float32)
        fresh = np.asarray(painted.convert("RGB"), dtype=np.float32)
        mixed = base + (fresh - base) * self.alpha
        return Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8))


def prepare(
    edit: Edit,
    source: Image.Image,
    size: tuple[int, int],
    seam: int,
    region: Image.Image | None = None,
) -> Prepared:
    """Starting image, repaint mask and compositing weights for ``edit`` at ``size``."""
    if source.size != edit.source_size:
        raise InvalidTask(
            f"the source image is {source.width}x{source.height} but the edit was made for "
            f"{edit.source_size[0]}x{edit.source_size[1]}"
        )
    placed = layout(edit, size)
    width, height = size
    left, top, right, bottom = placed.box
    fitted = np.asarray(
        source.convert("RGB").resize(placed.box_size, Image.Resampling.LANCZOS), dtype=np.uint8
    )
    # Edge pixels repeated out to the canvas edges.
    canvas = np.pad(fitted, ((top, height - bottom), (left, width - right), (0, 0)), mode="edge")
    new = np.ones((height, width), dtype=bool)
    new[top:bottom, left:right] = False
    if region is not None:
        if region.size != edit.source_size:
            raise InvalidTask(
                f"the mask is {region.width}x{region.height} but the image is "
                f"{edit.source_size[0]}x{edit.source_size[1]}"
            )
        painted = region.convert("L").resize(placed.box_size, Image.Resampling.BILINEAR)
        new[top:bottom, left:right] = np.asarray(painted) >= MASK_THRESHOLD
    if not new.any():
        raise InvalidTask("the edit leaves nothing to paint (its mask is empty)")
    radius = max(seam, FILL_BLUR * min(width, height))
    blurred = np.asarray(
        Image.fromarray(canvas).filter(ImageFilter.GaussianBlur(radius)), dtype=np.uint8
    )
    init = np.where(new[..., None], blurred, canvas)
    grown, alpha = _feather(new, seam)
    return Prepared(
        layout=placed,
        init=Image.fromarray(init),
        mask=Image.fromarray(np.where(grown, 255, 0).astype(np.uint8)),
        alpha=alpha[..., None],
        new=new,
    )


def _feather(new: np.ndarray, seam: int) -> tuple[np.ndarray, np.ndarray]:
    """(``new`` grown by ``seam`` px, weights 1 on new falling to 0 at ``seam + 1`` px away).

    Growing by one pixel at a time (a 3x3 max) gives the chessboard distance to ``new``: a pixel
    ``d`` away (1..seam) is inside ``seam - d + 1`` of the ``seam`` grown masks.
    """
    grown = new.copy()
    inside = np.zeros(new.shape, dtype=np.float32)
    for _ in range(seam):
        step = grown.copy()
        step[1:, :] |= grown[:-1, :]
        step[:-1, :] |= grown[1:, :]
        wide = step.copy()
        wide[:, 1:] |= step[:, :-1]
        wide[:, :-1] |= step[:, 1:]
        grown = wide
        inside += grown
    return grown, inside / max(1, seam)


def task_canvas(
    task: RenderTask, size: tuple[int, int], native: int, vae_scale_factor: int
) -> Prepared | None:
    """An outpaint or inpaint task's canvas, mask and compositing, or None for other kinds."""
    if task.kind not in (JobKind.OUTPAINT, JobKind.INPAINT):
        return None
    if task.edit is None or not task.init_images:
        raise InvalidTask(f"an {task.kind} job needs its edit and source image")
    if task.strength is None or not 0 < task.strength <= 1:
        raise InvalidTask(f"edit strength must be in (0, 1], got {task.strength}")
    if (task.kind is JobKind.INPAINT) != (task.mask is not None):
        raise InvalidTask("a region edit needs its mask image, and only a region edit has one")
    seam = seam_width(native, vae_scale_factor)
    return prepare(task.edit, task.init_images[0], size, seam, task.mask)
