"""Re-render a stored job from its database record and compare with the stored images.

The task is built the way the worker built it (``gpu_worker.tasks``), rendered on a local
engine, and each image is compared pixel by pixel with the stored one: on CPU with the same
model and library versions the images are bit-identical; otherwise the report says how far
apart they are (largest and mean channel difference, share of pixels that differ).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gpu_worker.imaging import decode_image, encode_png, make_grid
from gpu_worker.inputs import StoredImages, task_for
from gpu_worker.task import RenderEngine, RenderResult
from storage.contract import GRID_SIZE, Job
from storage.errors import StorageError
from storage.images import ImageStore


@dataclass(frozen=True)
class ImageComparison:
    """One replayed image next to the stored one (index -1 is the grid)."""

    index: int
    seed: int
    stored_sha256: str | None
    replayed_sha256: str
    equal: bool
    max_abs_diff: int | None
    mean_abs_diff: float | None
    differing_pixels: float | None
    note: str | None
    path: str | None


@dataclass(frozen=True)
class ReplayReport:
    """The whole comparison."""

    job_id: int
    model: str
    equal: bool
    images: tuple[ImageComparison, ...]


@dataclass(frozen=True)
class Difference:
    """How two images compare."""

    equal: bool
    max_abs_diff: int | None = None
    mean_abs_diff: float | None = None
    differing_pixels: float | None = None
    note: str | None = None


def compare(stored: Image.Image | None, replayed: Image.Image) -> Difference:
    """Whether two images have the same pixels, and how far apart they are when not."""
    if stored is None:
        return Difference(False, note="the stored image is missing from the image store")
    if stored.size != replayed.size:
        return Difference(
            False,
            note=f"sizes differ: stored {stored.size[0]}x{stored.size[1]}, "
            f"replayed {replayed.size[0]}x{replayed.size[1]}",
        )
    a = np.asarray(stored.convert("RGB"), dtype=np.int16)
    b = np.asarray(replayed.convert("RGB"), dtype=np.int16)
    diff = np.abs(a - b)
    return Difference(
        equal=not bool(diff.any()),
        max_abs_diff=int(diff.max()),
        mean_abs_diff=round(float(diff.mean()), 4),
        differing_pixels=round(float(diff.any(axis=2).mean()), 6),
    )


async def replay(
    job: Job,
    queue: StoredImages,
    store: ImageStore,
    engine: RenderEngine,
    *,
    out_dir: Path | None = None,
) -> ReplayReport:
    """Render ``job`` again and compare every image with the stored one."""
    task = await task_for(job, queue, store)
    default_model = await asyncio.to_thread(engine.prepare)
    result: RenderResult = await asyncio.to_thread(engine.render, task)
    replayed: list[tuple[int, int, Image.Image]] = [
        (i, seed, image)
        for i, (image, seed) in enumerate(zip(result.images, result.seeds, strict=True))
    ]
    if len(result.images) == GRID_SIZE:
        replayed.insert(0, (-1, result.seeds[0], make_grid(result.images)))
    records = {record.index: record for record in await queue.images(job.id)}
    if out_dir is not None:
        await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    comparisons = []
    for index, seed, image in replayed:
        record = records.get(index)
        stored: Image.Image | None = None
        if record is not None:
            try:
                stored = await asyncio.to_thread(decode_image, await store.get(record.sha256))
            except StorageError:
                stored = None
        png = await asyncio.to_thread(encode_png, image)
        path = None
        if out_dir is not None:
            name = f"{job.id}-grid.png" if index < 0 else f"{job.id}-{index + 1}.png"
            path = str(out_dir / name)
            await asyncio.to_thread(Path(path).write_bytes, png)
        if record is None:
            difference = Difference(False, note="the job has no stored image with this index")
        else:
            difference = await asyncio.to_thread(compare, stored, image)
        comparisons.append(
            ImageComparison(
                index=index,
                seed=seed,
                stored_sha256=record.sha256 if record else None,
                replayed_sha256=hashlib.sha256(png).hexdigest(),
                equal=difference.equal,
                max_abs_diff=difference.max_abs_diff,
                mean_abs_diff=difference.mean_abs_diff,
                differing_pixels=difference.differing_pixels,
                note=difference.note,
                path=path,
            )
        )
    return ReplayReport(
        job_id=job.id,
        model=job.request.model or default_model,
        equal=all(c.equal for c in comparisons) and bool(comparisons),
        images=tuple(comparisons),
    )
