"""From a stored job to its render task: request, seed, and the input images from the store.

Shared by the run loop and ``imagine replay``, so a replay renders exactly what the worker did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Protocol

from PIL import Image

from gpu_worker.edit_inputs import edit_task
from gpu_worker.errors import InvalidTask
from gpu_worker.imaging import decode_image
from gpu_worker.task import RenderTask
from storage.contract import GRID_SIZE, ImageRecord, Job, JobKind
from storage.errors import StorageError
from storage.images import ImageStore


class StoredImages(Protocol):
    """Where a job's stored images are listed (``JobQueue`` has it)."""

    async def images(self, job_id: int) -> Sequence[ImageRecord]:
        """The job's stored images."""
        ...


async def task_for(
    job: Job, queue: StoredImages, store: ImageStore, *, decoder: Executor | None = None
) -> RenderTask:
    """The render task for a job, with its input images loaded from the store (an edit's
    source and mask by ``gpu_worker.edit_inputs``).

    Inputs are decoded one at a time on ``decoder`` (the worker's idle device thread; the
    default pool when None), each no larger than the render needs (an upscale needs all of it).
    """
    if job.edit is not None:
        return await edit_task(job, store)
    request = job.request
    if job.kind in (JobKind.VARIATION, JobKind.UPSCALE):
        if job.parent_job_id is not None:
            keys = [await parent_image(job, queue)]
        elif job.input_images:
            keys = [job.input_images[0]]
        else:
            raise InvalidTask(f"{job.kind} job {job.id} names no source image")
    else:
        keys = list(job.input_images)
    fit = None if job.kind is JobKind.UPSCALE else (request.width, request.height)
    init = await _load(keys, store, fit, decoder)
    references: tuple[Image.Image, ...] = ()
    if job.kind is JobKind.VARIATION and request.control:
        # A variation of a ControlNet grid follows the same control image.
        references = await _load(job.input_images, store, fit, decoder)
    # Style and character references paint grids, re-rolls and variations (never upscales).
    painted = job.kind is not JobKind.UPSCALE
    style = await _load(job.style_images, store, fit, decoder) if painted else ()
    character = await _load(job.character_images, store, fit, decoder) if painted else ()
    return RenderTask(
        request=request,
        seed=job.seed,
        kind=job.kind,
        prompt_images=references,
        init_images=init,
        strength=job.strength,
        indices=(0,) if job.kind is JobKind.UPSCALE else tuple(range(GRID_SIZE)),
        style_images=style,
        style_weight=request.style_weight,
        character_images=character,
        character_weight=request.character_weight,
    )


async def _load(
    keys: Sequence[str],
    store: ImageStore,
    fit: tuple[int, int] | None,
    decoder: Executor | None,
) -> tuple[Image.Image, ...]:
    """The stored images ``keys`` (each once), decoded one at a time to fit ``fit``."""
    loop = asyncio.get_running_loop()
    decoded = []
    for key in dict.fromkeys(keys):
        try:
            data = await store.get(key)
            decoded.append(await loop.run_in_executor(decoder, decode_image, data, fit))
        except StorageError as exc:
            raise InvalidTask(f"input image {key[:12]}... is not in the image store") from exc
        except ValueError as exc:
            raise InvalidTask(f"input image {key[:12]}... could not be read") from exc
    return tuple(decoded)


async def parent_image(job: Job, queue: StoredImages) -> str:
    """The hash of the parent's image a variation or upscale starts from."""
    assert job.parent_job_id is not None
    index = job.parent_index if job.parent_index is not None else 0
    records = await queue.images(job.parent_job_id)
    for record in records:
        if record.index == index:
            return record.sha256
    raise InvalidTask(
        f"job {job.parent_job_id} has no image {index + 1} to work from "
        f"(it has {sorted(r.index + 1 for r in records if r.index >= 0)})"
    )
