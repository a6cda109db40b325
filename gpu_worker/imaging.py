"""Pillow-only image helpers: sizes, grids and encoding. No torch, so post-processing threads
can use them while the device renders the next job."""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Sequence

from PIL import Image

REFERENCE_RESOLUTION = 1024


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


def decode_image(data: bytes) -> Image.Image:
    """Open image bytes as RGB, raising ValueError with a clear message when they are not one."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(
            f"stored input is not a readable image ({len(data)} bytes): {exc}"
        ) from exc


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
