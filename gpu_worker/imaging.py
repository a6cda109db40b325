"""Pillow-only image helpers: sizes, grids and encoding. No torch, so post-processing threads
can use them while the device renders the next job."""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Sequence

from PIL import Image

REFERENCE_RESOLUTION = 1024
# The bot's check refuses larger image prompts; a stored input above it is not decoded.
MAX_INPUT_PIXELS = 25_000_000
_STRIP_ROWS = 256


def scale_size(width: int, height: int, native: int, multiple: int = 8) -> tuple[int, int]:
    """Scale an SDXL size (made for 1024 px models) to a model whose native side is ``native``.

    Each side is multiplied by ``native / 1024`` and rounded half up to a multiple of ``multiple``
    (the VAE scale factor), never below one multiple. At native 1024 sizes are unchanged; the
    tiny 64 px test model turns 1344x768 into 88x48.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    scale = native / REFERENCE_RESOLUTION

    def side(value: int) -> int:
        return max(multiple, math.floor(value * scale / multiple + 0.5) * multiple)

    return side(width), side(height)


def make_grid(images: Sequence[Image.Image]) -> Image.Image:
    """Compose four same-size images into a 2x2 grid (1 2 / 3 4)."""
    if len(images) != 4:
        raise ValueError(f"a grid needs exactly 4 images, got {len(images)}")
    width, height = images[0].size
    if any(image.size != (width, height) for image in images):
        raise ValueError(f"grid images differ in size: {[image.size for image in images]}")
    grid = Image.new("RGB", (2 * width, 2 * height))
    for i, image in enumerate(images):
        grid.paste(image.convert("RGB"), ((i % 2) * width, (i // 2) * height))
    return grid


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes, encoded for speed at no cost in size.

    PNG's row filters already remove most of a photo's redundancy, so zlib's run-length
    strategy (``Z_RLE``) makes files as small as level 4-6 in a third to two thirds of level 4's
    CPU time on 1024 px renders. That time is what could make the device wait.
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return buffer.getvalue()


def decode_image(
    data: bytes, fit: tuple[int, int] | None = None, max_pixels: int = MAX_INPUT_PIXELS
) -> Image.Image:
    """Open image bytes as RGB; with ``fit``, no larger than needed to cover that size.

    A JPEG is decoded at a reduced DCT scale (``draft``), anything else is shrunk by a whole
    factor (``reduce``) right after decoding: an input keeps little more memory than the render
    needs, and decoding one costs about its decoded size. ``ValueError`` with a clear message
    when the bytes are not a usable image.
    """
    try:
        # Not a context manager: closing an image frees its pixels, and these are returned.
        image: Image.Image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise ValueError(
                f"an input image is {width}x{height}; at most {max_pixels:,} pixels are used"
            )
        if fit is not None:
            image.draft(None, fit)  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        image.load()
        return _shrink_to_rgb(image, fit)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(
            f"stored input is not a readable image ({len(data)} bytes): {exc}"
        ) from exc


def _shrink_to_rgb(image: Image.Image, fit: tuple[int, int] | None) -> Image.Image:
    """``image`` as RGB, reduced by the largest whole factor that still covers ``fit``.

    Converting and reducing go strip by strip, so the only full-size copy is the decoded
    image itself (a whole-image RGBA reduce would make a premultiplied full-size copy first).
    """
    factor = 1 if fit is None else max(1, min(image.width // fit[0], image.height // fit[1]))
    if factor == 1:
        return image if image.mode == "RGB" else image.convert("RGB")
    width, height = image.size
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    rows = factor * max(1, _STRIP_ROWS // factor)  # whole reduce blocks in every strip
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(height, top + rows)))
        if strip.mode != "RGB":
            strip = strip.convert("RGB")
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


def blend_images(images: Sequence[Image.Image], size: tuple[int, int]) -> Image.Image:
    """Resize every image to ``size`` (cover-crop, Lanczos) and average them."""
    if not images:
        raise ValueError("no images to blend")
    fitted = [fit_cover(image, size) for image in images]
    result = fitted[0]
    for n, image in enumerate(fitted[1:], start=2):
        # A running mean: the n-th image gets weight 1/n.
        result = Image.blend(result, image, 1.0 / n)
    return result


def fit_cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale to cover ``size`` keeping the aspect, then centre-crop to it exactly."""
    width, height = size
    scale = max(width / image.width, height / image.height)
    resized = image.convert("RGB").resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))
