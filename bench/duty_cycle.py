"""Device duty cycle of the worker loop: does the GPU ever wait for the CPU?

A saturated queue (all jobs enqueued up front) is served by the real worker loop with a
stand-in engine that holds the "device" for a fixed time per job and returns four distinct
1024x1024 images. Everything else is real: PNG encoding, the 2048x2048 grid, the file image
store and the database writes (SQLite, or PostgreSQL with ``--database``). Prints one JSON
object; ``busy_fraction`` is device-held time over wall time from the first render's start to
the last one's end (``busy_fraction_with_tail`` also counts storing the last job). Target: at
least 0.97.

    python -m bench.duty_cycle [--jobs 30] [--hold 1.0] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gpu_worker.loop import Worker
from gpu_worker.task import RenderResult, RenderTask, StepEvent
from imagine.settings import Settings
from storage.contract import GenerationRequest, JobKind, JobSpec, JobStatus
from storage.db import Database
from storage.images import FileImageStore, ImageStore
from storage.limits import Limits
from storage.migrate import upgrade
from storage.queue import JobQueue

SIZE = 1024
STEPS = 30


class HoldingDevice:
    """Holds the device ``hold`` seconds per job, like a GPU render, and records the spans."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.spans: list[tuple[float, float]] = []
        rng = np.random.default_rng(0)
        # Gradients, waves and grain: compresses about like a rendered photo (1.8-2.4 MB as
        # PNG), neither like flat colour nor like pure noise.
        y, x = np.mgrid[0:SIZE, 0:SIZE]
        base = np.stack([x * 255 / SIZE, y * 255 / SIZE, (x + y) * 127 / SIZE], axis=-1)
        base = base + 40 * (np.sin(x / 37.0) * np.cos(y / 53.0))[..., None]
        self.base = [
            np.clip(base + rng.normal(0, 3 + 3 * i, base.shape), 0, 255).astype(np.uint8)
            for i in range(4)
        ]
        self._idle = threading.Event()
        self.latents = torch.zeros(4, 4, SIZE // 8, SIZE // 8)

    def prepare(self) -> str:
        return "stand-in device"

    def capabilities(self) -> dict[str, Any]:
        return {}

    def render(
        self,
        task: RenderTask,
        *,
        on_step: Callable[[StepEvent], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> RenderResult:
        start = time.perf_counter()
        images = []
        for i, array in enumerate(self.base):
            # Distinct bytes per job, so the content-addressed store really writes each one.
            stamped = array.copy()
            stamped[0, :8, 0] = np.frombuffer(task.seed.to_bytes(8, "little"), np.uint8)
            stamped[1, 0, 0] = i
            images.append(Image.fromarray(stamped))
        # Stands in for the device computing, step by step as a pipeline reports them.
        for step in range(1, STEPS + 1):
            remaining = start + self.hold * step / STEPS - time.perf_counter()
            if remaining > 0:
                self._idle.wait(remaining)
            if on_step is not None:
                on_step(StepEvent(step, STEPS, self.latents))
        end = time.perf_counter()
        self.spans.append((start, end))
        return RenderResult(
            images=images,
            seeds=[task.seed + i for i in range(4)],
            width=SIZE,
            height=SIZE,
            steps_run=STEPS,
            seconds=end - start,
            model="stand-in",
        )


async def measure(
    jobs: int, hold: float, database: str | None, images: ImageStore | None = None
) -> dict[str, object]:
    """Serve ``jobs`` saturated jobs; ``images`` is the store (default: files in a temp dir)."""
    with tempfile.TemporaryDirectory() as tmp:
        url = database or f"sqlite+aiosqlite:///{Path(tmp) / 'imagine.db'}"
        await asyncio.to_thread(upgrade, url)
        db = await Database.open(url)
        limits = Limits(images=10**6, period="day", max_concurrent=100, max_queued=1000)
        queue = JobQueue(db, lease_seconds=60, limits=limits)
        request = GenerationRequest(prompt="a lighthouse at dusk", segments=(("a", 1.0),))
        for n in range(jobs):
            spec = JobSpec(kind=JobKind.IMAGINE, request=request, cost=4)
            await queue.enqueue(1 + n % 5, [spec], interaction_id=10_000 + n)
        device = HoldingDevice(hold)
        settings = Settings.load({}, data_dir=Path(tmp), database_url=url)
        store = images or FileImageStore(Path(tmp) / "images")
        worker = Worker(settings.worker(), queue=queue, images=store, engine=device)
        started = time.perf_counter()
        await worker.run(asyncio.Event(), once=True)
        ended = time.perf_counter()
        succeeded = 0
        for user in range(1, 6):
            succeeded += len(await queue.user_jobs(user, [JobStatus.SUCCEEDED]))
        stats = await queue.stats()
        await db.close()
    first_claim = device.spans[0][0]
    busy = sum(end - start for start, end in device.spans)
    gaps = [b[0] - a[1] for a, b in zip(device.spans, device.spans[1:], strict=False)]
    return {
        "benchmark": "duty_cycle",
        "database": "postgresql" if database else "sqlite",
        "jobs": jobs,
        "hold_seconds": hold,
        "image_size": SIZE,
        # Steady state: from the first render's start to the last render's end.
        "busy_fraction": round(busy / (device.spans[-1][1] - first_claim), 4),
        # Including the last job's encoding and storing, which nothing can overlap.
        "busy_fraction_with_tail": round(busy / (ended - first_claim), 4),
        "wall_seconds": round(ended - started, 3),
        "median_gap_ms": round(1000 * float(np.median(gaps)), 2) if gaps else None,
        "max_gap_ms": round(1000 * max(gaps), 2) if gaps else None,
        "tail_after_last_render_ms": round(1000 * (ended - device.spans[-1][1]), 1),
        "succeeded": succeeded,
        "left_queued": stats.queued,
        "target": 0.97,
    }


def main() -> None:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--hold", type=float, default=1.0, help="device seconds per job")
    parser.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.jobs, args.hold, args.database))))


if __name__ == "__main__":
    main()
