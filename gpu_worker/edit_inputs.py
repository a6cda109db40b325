"""An edit job's render task: its source image and region mask, loaded from the image store."""

from __future__ import annotations

import asyncio

from PIL import Image

from gpu_worker.errors import InvalidTask
from gpu_worker.imaging import decode_image
from gpu_worker.task import RenderTask
from storage.contract import GRID_SIZE, Job
from storage.errors import StorageError
from storage.images import ImageStore


async def _load(images: ImageStore, key: str, what: str) -> Image.Image:
    try:
        data = await images.get(key)
    except StorageError as exc:
        raise InvalidTask(f"the {what} {key[:12]}... is not in the image store") from exc
    return await asyncio.to_thread(decode_image, data)


async def edit_task(job: Job, images: ImageStore) -> RenderTask:
    """The task for an outpaint or inpaint job (``job.edit`` names the stored images)."""
    edit = job.edit
    if edit is None:
        raise InvalidTask(f"{job.kind} job {job.id} records no edit")
    source = await _load(images, edit.source, "source image")
    mask = await _load(images, edit.mask, "region mask") if edit.mask is not None else None
    return RenderTask(
        request=job.request,
        seed=job.seed,
        kind=job.kind,
        init_images=(source,),
        strength=job.strength,
        indices=tuple(range(GRID_SIZE)),
        edit=edit,
        mask=mask,
    )
