"""A render's images on their way to the store: PNG encoding, the grid, and storing the files."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from PIL import Image

from gpu_worker.imaging import encode_png, make_grid
from gpu_worker.task import RenderResult
from storage.contract import GRID_SIZE, StoredImage
from storage.images import ImageStore


async def store_images(
    result: RenderResult, images: ImageStore, pool: Executor
) -> list[StoredImage]:
    """Encode the images (and, for a grid, the 2x2 grid as index -1) in ``pool`` and store them."""
    loop = asyncio.get_running_loop()
    # Each PNG (and the grid) is encoded in its own pool task, so all cores share them.
    encodes = [
        loop.run_in_executor(pool, _encode_one, i, seed, image)
        for i, (image, seed) in enumerate(zip(result.images, result.seeds, strict=True))
    ]
    if len(result.images) == GRID_SIZE:
        encodes.append(loop.run_in_executor(pool, _encode_grid, result.images, result.seeds[0]))
    files = await asyncio.gather(*encodes)
    blobs = await asyncio.gather(*(images.put(png, ".png") for _, _, png, _ in files))
    return [
        StoredImage(index, blob.sha256, width, height, seed, blob.size, blob.path)
        for (index, seed, _, (width, height)), blob in zip(files, blobs, strict=True)
    ]


def _encode_one(
    index: int, seed: int, image: Image.Image
) -> tuple[int, int, bytes, tuple[int, int]]:
    """(index, seed, PNG bytes, size) of one image."""
    return index, seed, encode_png(image), image.size


def _encode_grid(images: list[Image.Image], seed: int) -> tuple[int, int, bytes, tuple[int, int]]:
    """The 2x2 grid as index -1."""
    grid = make_grid(images)
    return -1, seed, encode_png(grid), grid.size
