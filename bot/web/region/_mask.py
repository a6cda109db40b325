"""Masks uploaded by the editor: a PNG of the image's size, white (or opaque) where to repaint."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

MAX_MASK_BYTES = 2 * 1024 * 1024
_PNG = b"\x89PNG\r\n\x1a\n"
_PAINTED = 128


class MaskRefused(Exception):
    """A mask that cannot be used; ``str()`` says why and what is allowed."""


def clean_mask(data: bytes, size: tuple[int, int]) -> bytes:
    """The mask as a grayscale PNG (255 where painted, 0 elsewhere), after every check.

    Blocking (decodes the image): call it in a thread.
    """
    if len(data) > MAX_MASK_BYTES:
        raise MaskRefused(
            f"The mask is {len(data):,} bytes; it may be at most {MAX_MASK_BYTES:,} bytes."
        )
    if not data.startswith(_PNG):
        raise MaskRefused("The mask must be a PNG image.")
    try:
        with Image.open(io.BytesIO(data)) as image:
            # The size is in the header: checked before any pixel is decoded.
            if image.size != size:
                raise MaskRefused(
                    f"The mask is {image.width}x{image.height}; it must be the image's size, "
                    f"{size[0]}x{size[1]}."
                )
            pixels = np.asarray(image.convert("LA"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MaskRefused(f"The mask is not a readable PNG image ({exc}).") from None
    painted = (pixels[..., 0] >= _PAINTED) & (pixels[..., 1] >= _PAINTED)
    if not painted.any():
        raise MaskRefused("Paint over the part of the image to change first: the mask is empty.")
    out = io.BytesIO()
    Image.fromarray(np.where(painted, 255, 0).astype(np.uint8), mode="L").save(out, format="PNG")
    return out.getvalue()
