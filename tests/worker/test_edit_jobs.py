"""Edit jobs through the worker loop: source and mask read from the store, a grid stored back."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gpu_worker.engine import Engine
from gpu_worker.loop import Worker
from imagine.settings import Settings
from storage.contract import EditAction, GenerationRequest, JobKind, JobSpec, JobStatus
from storage.edits import outpaint, region, sdxl_size
from storage.queue import JobQueue
from tests.worker.conftest import pixels
from tests.worker.test_edits import SEAM, region_mask, source_image
from tests.worker.test_loop import USER, serve_until_empty, services, worker_settings

__all__ = ["services"]


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


async def test_outpaint_and_region_jobs_render_from_the_stored_images(
    services: dict[str, Any],
    engine: Engine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
) -> None:
    queue: JobQueue = services["queue"]
    source = source_image()
    stored = await services["images"].put(png(source), ".png")
    mask = await services["images"].put(png(region_mask((64, 64), (40, 40, 64, 64))), ".png")
    zoom = outpaint(EditAction.ZOOM, stored.sha256, (64, 64), zoom=2.0)
    paint = region(stored.sha256, (64, 64), mask.sha256)

    def spec(kind: JobKind, edit: Any) -> JobSpec:
        width, height = sdxl_size(edit.canvas)
        request = GenerationRequest(
            prompt="a harbour", segments=(("a harbour", 1.0),), steps=2, width=width, height=height
        )
        return JobSpec(kind, request, cost=4, strength=0.9, edit=edit)

    jobs = await queue.enqueue(
        USER, [spec(JobKind.OUTPAINT, zoom), spec(JobKind.INPAINT, paint)], interaction_id=9
    )
    worker = Worker(
        worker_settings(tiny_settings, database_url, tmp_path).worker(),
        queue=queue,
        images=services["images"],
        engine=engine,
        worker_id="w-edit",
    )
    await serve_until_empty(worker)

    original = pixels(source)
    for job in jobs:
        done = await queue.get(job.id)
        assert done.status is JobStatus.SUCCEEDED, done.error
        records = {record.index: record for record in await queue.images(job.id)}
        assert sorted(records) == [-1, 0, 1, 2, 3]
        assert (records[-1].width, records[-1].height) == (128, 128)
        image = Image.open(io.BytesIO(await services["images"].get(records[0].sha256)))
        got = pixels(image)
        if job.kind is JobKind.OUTPAINT:
            kept = pixels(source.resize((32, 32), Image.Resampling.LANCZOS))[8:24, 8:24]
            assert np.abs(got[24:40, 24:40] - kept).max() <= 1
        else:
            far = 40 - SEAM
            assert np.abs(got[:far, :far] - original[:far, :far]).max() <= 1
            assert np.abs(got[40:, 40:] - original[40:, 40:]).mean() > 1.0
