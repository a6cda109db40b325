"""A claimed job while a worker holds it: its shared state, its keep-alive (lease renewals with
progress) and the device thread's step callback that feeds it.

Used by the run loop (``gpu_worker.loop``) and by batched renders (``gpu_worker.batch_jobs``):
each job of a batch is held on its own, with its own lease, progress and preview.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gpu_worker.task import StepCallback, StepEvent
from storage.contract import Job
from storage.errors import LeaseLost, StorageError
from storage.queue import JobQueue

log = logging.getLogger(__name__)

PREVIEW_MAX_SIDE = 128


@dataclass
class Held:
    """One held job: why its render should stop, and the progress waiting to be reported."""

    job: Job
    abort: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    report: tuple[int, bytes | None] | None = None
    last_report: float = -math.inf
    claimed_at: float = field(default_factory=time.monotonic)

    def stop(self, reason: str) -> None:
        """Abort the render at its next step, for ``reason`` (cancel, shutdown or lost)."""
        if not self.abort.is_set():
            self.reason = reason
            self.abort.set()


def step_reporter(
    held: Held,
    loop: asyncio.AbstractEventLoop,
    interval: float,
    at_last_step: Callable[[], None],
) -> StepCallback:
    """Device thread: a step callback that hands progress and a preview to ``keep_alive`` at
    most every ``interval`` seconds (and at the last step, where ``at_last_step`` runs on the
    loop: the next claim)."""

    def on_step(event: StepEvent) -> None:
        if event.step == event.total:
            loop.call_soon_threadsafe(at_last_step)
        now = time.monotonic()
        if now - held.last_report < interval and event.step < event.total:
            return
        held.last_report = now
        from gpu_worker.preview import preview_jpeg

        preview = preview_jpeg(event.latents, PREVIEW_MAX_SIDE)
        loop.call_soon_threadsafe(_post_report, held, event.percent, preview)

    return on_step


def _post_report(held: Held, percent: int, preview: bytes | None) -> None:
    held.report = (percent, preview)
    held.wake.set()


async def keep_alive(held: Held, queue: JobQueue, worker_id: str, interval: float) -> None:
    """Renew the lease (with progress when there is some); notice cancels and lost leases.

    It runs at least every ``interval`` seconds, so a cancel is seen within about that long
    even while a step is slow.
    """
    job_id = held.job.id
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(held.wake.wait(), interval)
        held.wake.clear()
        report, held.report = held.report, None
        try:
            if report is not None:
                # A step past 99% is reported as 99 until the images are stored.
                job = await queue.report_progress(job_id, worker_id, min(report[0], 99), report[1])
            else:
                job = await queue.heartbeat(job_id, worker_id)
        except LeaseLost as exc:
            log.warning("job %s: lease lost (%s); abandoning it", job_id, exc)
            held.stop("lost")
            return
        except StorageError as exc:
            log.error("job %s: lease renewal failed: %s", job_id, exc)
            continue
        if job.cancel_requested:
            held.stop("cancel")
