"""The geometry of image edits, shared by the bot (which records it) and the engine (which paints).

All sizes are in the source image's pixels:

- Zoom Out ``z`` (2, 1.5, or Custom Zoom 1..2): the canvas is ``z`` times the source on each
  side, the source centred; Custom Zoom with ``--ar W:H`` then grows the canvas's short way to
  that shape.
- Pan ⬅️ ➡️ ⬆️ ⬇️: that side is extended by half the source's side in that direction (a new
  strip of 50% of the width for ⬅️ ➡️, of the height for ⬆️ ⬇️); the source keeps the rest.
- Make Square: the short side grows to the long one, the source centred.
- Vary (Region): the canvas is the source itself; a mask says what is repainted.

The result is painted at ``sdxl_size(canvas)``: about one megapixel with sides that are
multiples of 64, as close to the canvas's shape as those allow (the canvas is scaled to fit and
centred; a sliver left over at the sides is painted too). The engine then scales that to the
model's native resolution like any other request. Canvases wider or taller than 4:1 are refused.
"""

from __future__ import annotations

import math
from fractions import Fraction

from storage.contract import Edit, EditAction
from storage.errors import InvalidValue

ZOOM_MIN = 1.0
ZOOM_MAX = 2.0
PAN_SHARE = Fraction(1, 2)
MAX_RATIO = 4
TARGET_AREA = 1024 * 1024
MULTIPLE = 64
PANS = (EditAction.PAN_LEFT, EditAction.PAN_RIGHT, EditAction.PAN_UP, EditAction.PAN_DOWN)
_ACROSS = (EditAction.PAN_LEFT, EditAction.PAN_RIGHT)


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise InvalidValue(f"an image to edit must have a positive size, got {width}x{height}")


def _check_shape(canvas: tuple[int, int], what: str) -> None:
    width, height = canvas
    if width > MAX_RATIO * height or height > MAX_RATIO * width:
        ratio = Fraction(width, height).limit_denominator(20)
        raise InvalidValue(
            f"{what} would make the image {ratio.numerator}:{ratio.denominator}; "
            f"edits may go up to {MAX_RATIO}:1 or 1:{MAX_RATIO}"
        )


def check_zoom(zoom: float) -> float:
    """A Custom Zoom factor, checked: 1 to 2."""
    if not math.isfinite(zoom) or not ZOOM_MIN <= zoom <= ZOOM_MAX:
        raise InvalidValue(f"zoom must be a number from {ZOOM_MIN:g} to {ZOOM_MAX:g}, got {zoom:g}")
    return zoom


def outpaint(
    action: EditAction,
    source: str,
    size: tuple[int, int],
    *,
    zoom: float | None = None,
    aspect: tuple[int, int] | None = None,
) -> Edit:
    """The edit that grows a ``size`` source for ``action`` (a zoom needs ``zoom``).

    A zoom with an ``aspect`` (W, H) also grows the zoomed canvas's short way to that shape.
    """
    width, height = size
    _check_size(width, height)
    if action is EditAction.ZOOM:
        if zoom is None:
            raise InvalidValue("a zoom out needs a zoom factor from 1 to 2")
        check_zoom(zoom)
        canvas = (round(width * zoom), round(height * zoom))
        if aspect is not None:
            canvas = _reshape(canvas, aspect)
        offset = ((canvas[0] - width) // 2, (canvas[1] - height) // 2)
    elif action in PANS:
        across = action in _ACROSS
        strip = math.ceil((width if across else height) * PAN_SHARE)
        canvas = (width + strip, height) if across else (width, height + strip)
        offset = (
            strip if action is EditAction.PAN_LEFT else 0,
            strip if action is EditAction.PAN_UP else 0,
        )
        zoom = None
    elif action is EditAction.SQUARE:
        if width == height:
            raise InvalidValue(f"the image is already square ({width}x{height})")
        side = max(width, height)
        canvas = (side, side)
        offset = ((side - width) // 2, (side - height) // 2)
        zoom = None
    else:
        raise InvalidValue(f"{action} is not an outpainting edit")
    if canvas == (width, height):
        raise InvalidValue(
            f"{_describe(action, zoom)} adds nothing to a {width}x{height} image; "
            "zoom out by more than 1"
        )
    _check_shape(canvas, _describe(action, zoom))
    return Edit(action, source, (width, height), canvas, offset, zoom)


def _reshape(canvas: tuple[int, int], aspect: tuple[int, int]) -> tuple[int, int]:
    """``canvas`` grown along one side (never cropped) to the ``aspect`` W:H."""
    width, height = canvas
    wide, high = aspect
    if wide < 1 or high < 1:
        raise InvalidValue(f"an aspect ratio needs two positive numbers, got {wide}:{high}")
    if width * high < height * wide:
        return round(height * wide / high), height
    return width, round(width * high / wide)


def region(source: str, size: tuple[int, int], mask: str) -> Edit:
    """The Vary (Region) edit of a ``size`` source with a stored mask."""
    _check_size(*size)
    return Edit(EditAction.REGION, source, size, size, (0, 0), None, mask)


def check_edit(edit: Edit) -> None:
    """Refuse an edit whose source does not fit on its canvas or that lacks what it needs."""
    (width, height), (cw, ch), (x, y) = edit.source_size, edit.canvas, edit.offset
    _check_size(width, height)
    if x < 0 or y < 0 or x + width > cw or y + height > ch:
        raise InvalidValue(
            f"the {width}x{height} source at ({x}, {y}) does not fit on the {cw}x{ch} canvas"
        )
    if (edit.action is EditAction.REGION) != (edit.mask is not None):
        raise InvalidValue("a region edit needs a mask, and only a region edit has one")
    if edit.zoom is not None:
        check_zoom(edit.zoom)
    _check_shape(edit.canvas, _describe(edit.action, edit.zoom))


def sdxl_size(canvas: tuple[int, int]) -> tuple[int, int]:
    """The SDXL size an edit is painted at: ~1 MP, multiples of 64, the canvas's shape."""
    width, height = canvas
    _check_size(width, height)
    scale = math.sqrt(TARGET_AREA / (width * height))
    target = math.log(width / height)

    def sides(value: float) -> set[int]:
        low = max(1, math.floor(value * scale / MULTIPLE))
        return {low * MULTIPLE, (low + 1) * MULTIPLE}

    candidates = [(w, h) for w in sides(width) for h in sides(height)]
    return min(
        candidates,
        key=lambda size: (
            round(abs(math.log(size[0] / size[1]) - target), 9),
            abs(size[0] * size[1] - TARGET_AREA),
        ),
    )


def edit_aspect(parent_aspect: str, edit: Edit) -> str:
    """The ``W:H`` aspect of the edited image, from the parent's (``"3:2"``, ...)."""
    if edit.action is EditAction.SQUARE:
        return "1:1"
    if edit.action not in PANS:
        return parent_aspect
    left, _, right = parent_aspect.partition(":")
    try:
        ratio = Fraction(int(left), int(right))
    except (ValueError, ZeroDivisionError):
        ratio = Fraction(*edit.source_size)
    ratio *= (1 + PAN_SHARE) if edit.action in _ACROSS else 1 / (1 + PAN_SHARE)
    return f"{ratio.numerator}:{ratio.denominator}"


def describe(edit: Edit) -> str:
    """The edit as its button names it (``Zoom Out 2x``, ``Pan Left``, ``Vary (Region)``)."""
    return _describe(edit.action, edit.zoom)


def _describe(action: EditAction, zoom: float | None) -> str:
    if action is EditAction.ZOOM:
        return f"Zoom Out {zoom:g}x" if zoom is not None else "Zoom Out"
    if action is EditAction.SQUARE:
        return "Make Square"
    if action is EditAction.REGION:
        return "Vary (Region)"
    return "Pan " + action.value.removeprefix("pan_").capitalize()
