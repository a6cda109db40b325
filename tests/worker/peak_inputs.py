"""Peak memory of the worker loop on a job with the most image prompts a command may have.

Run as ``python -m tests.worker.peak_inputs DATABASE_URL DATA_DIR`` (a fresh process, so the
measurement is this job's alone). It stores four distinct 5000x5000 inputs (25 MP each, the
bot's pixel limit: RGB, RGBA and palette PNGs and a JPEG, each a few hundred KB), enqueues one
job with them (the first listed twice), resets the process's peak RSS, runs the real worker loop
until the job is done with an engine that blends the inputs exactly as the SDXL engine does,
and prints JSON: the peak RSS growth in bytes and the sizes of the images the engine was given.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from gpu_worker.imaging import blend_images, scale_size
from gpu_worker.loop import Worker
from gpu_worker.task import RenderResult, RenderTask, StepEvent
from imagine.settings import Settings
from storage.contract import GenerationRequest, JobKind, JobSpec, JobStatus
from storage.db import Database
from storage.images import FileImageStore
from storage.limits import Limits
from storage.queue import JobQueue

SIDE = 5000
NATIVE = 1024  # the engine's SDXL size; the request is 1:1


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    """Make the peak RSS (VmHWM) the current RSS (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def _inputs() -> list[tuple[bytes, str]]:
    """Four distinct large images that compress to little (the costly case to decode)."""
    kinds: list[tuple[str, str, int | tuple[int, ...]]] = [
        ("RGB", "PNG", (40, 90, 200)),
        ("RGBA", "PNG", (80, 90, 200, 255)),
        ("P", "PNG", 3),
        ("RGB", "JPEG", (120, 90, 200)),
    ]
    made = []
    for mode, fmt, color in kinds:
        image = Image.new(mode, (SIDE, SIDE), color)
        out = io.BytesIO()
        image.save(out, fmt)
        made.append((out.getvalue(), ".png" if fmt == "PNG" else ".jpg"))
        del image
    return made


class BlendingEngine:
    """Blends the image prompts like ``Engine._init_image`` and returns four small images."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def prepare(self) -> str:
        return "blending stand-in"

    def capabilities(self) -> dict[str, Any]:
        return {}

    def render(
        self,
        task: RenderTask,
        *,
        on_step: Callable[[StepEvent], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> RenderResult:
        self.seen = [image.size for image in task.init_images]
        size = scale_size(task.request.width, task.request.height, NATIVE)
        blended = blend_images(task.init_images, size).resize((64, 64))
        return RenderResult([blended] * 4, [task.seed + i for i in range(4)], 64, 64, 1, 0.0, "x")


async def main(database_url: str, data_dir: Path) -> dict[str, object]:
    db = await Database.open(database_url)
    try:
        queue = JobQueue(db, limits=Limits(images=100))
        store = FileImageStore(data_dir / "images")
        hashes = [(await store.put(data, suffix)).sha256 for data, suffix in _inputs()]
        request = GenerationRequest(prompt="four pictures", segments=(("four pictures", 1.0),))
        spec = JobSpec(
            kind=JobKind.IMAGINE,
            request=request,
            cost=4,
            input_images=(*hashes, hashes[0]),
        )
        (job,) = await queue.enqueue(1, [spec], interaction_id=1)
        engine = BlendingEngine()
        settings = Settings.load({}, data_dir=data_dir, database_url=database_url)
        worker = Worker(
            settings.worker(), queue=queue, images=store, engine=engine, worker_id="peak"
        )
        gc.collect()
        _reset_peak()
        baseline = _status("VmRSS")
        started = time.perf_counter()
        await worker.run(asyncio.Event(), once=True)
        peak = _status("VmHWM") - baseline
        done = await queue.get(job.id)
    finally:
        await db.close()
    return {
        "status": str(done.status),
        "error": done.error,
        "peak_growth_bytes": peak,
        "inputs_seen": engine.seen,
        "seconds": round(time.perf_counter() - started, 2),
        "succeeded": done.status is JobStatus.SUCCEEDED,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], Path(sys.argv[2])))))
