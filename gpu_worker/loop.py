"""The worker's run loop: claim jobs, render them on the device, store results, finish.

The work flows through two stages so the device never waits for the CPU:

1. the device thread (one thread, one render at a time) runs the pipeline;
2. post-processing (PNG encoding, the grid, the image store, the finishing transaction) runs in
   a thread pool and on the event loop while the device thread already renders the next job.

The next job is claimed during the current render's last step, so the device does not wait for
that database round trip either.

While a job is held, a keep-alive task renews its lease every ``PROGRESS_INTERVAL`` seconds (or
``lease_seconds / 3`` if shorter); during a render it reports progress (percent and a small
preview) instead, at most that often, which renews the lease too. A requested cancel, seen in either
answer, aborts the render at the next step and the job is marked cancelled (refunded). A lost
lease (the job was reaped and given to another worker) aborts the render and leaves the job
alone. Errors are recorded per job (type and message) and the loop keeps serving: engine errors
about the job itself fail it for good, anything else goes back to the queue while attempts
remain. A locked or unreachable database never stops the worker: claims, lease renewals and
housekeeping try again at their next turn, a job whose inputs cannot be read goes back without
spending an attempt, and the writes that must not be lost (finish, fail, give back) are retried
until they land. On ``drain`` the loop claims no more, finishes the job in hand and returns. On
``stop`` (a second SIGTERM) it stops claiming, gives a job that is still rendering back to the
queue (no attempt spent), completes jobs already rendered, and returns. Expired leases are
reaped periodically, by every worker. With ``max_batch_jobs`` above 1, compatible jobs claimed
together render in one call and are then finished one by one (``gpu_worker.batch_jobs``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from gpu_worker.batch_jobs import check_batching, claim_batch, run_batch
from gpu_worker.config import WorkerSettings
from gpu_worker.errors import EngineError, JobCancelled, ModelLoadError
from gpu_worker.failures import Failure
from gpu_worker.health import WorkerHealth, health_server
from gpu_worker.held import Held, keep_alive, step_reporter
from gpu_worker.inputs import task_for
from gpu_worker.outputs import store_images
from gpu_worker.task import RenderEngine, RenderResult, RenderTask, StepCallback
from gpu_worker.waits import first, on_set, persist
from storage.contract import Job
from storage.errors import DatabaseUnavailable, LeaseLost, StorageError
from storage.images import ImageStore
from storage.logcontext import bind, bound
from storage.metrics import Metrics
from storage.queue import JobQueue

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 2.0
MAX_FINISHING = 2


def default_worker_id() -> str:
    """``host:pid:random``, unique per process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """One worker: a device thread, a post-processing pool and the claim loop."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        queue: JobQueue,
        images: ImageStore,
        engine: RenderEngine,
        worker_id: str | None = None,
        metrics: Metrics | None = None,
        post_threads: int | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
        health: WorkerHealth | None = None,
    ) -> None:
        self.settings = settings
        self.health = health
        self.queue = queue
        self.images = images
        self.engine = engine
        check_batching(settings.max_batch_jobs, engine)
        self.worker_id = worker_id or settings.worker_id or default_worker_id()
        self.metrics = metrics
        self.lease_seconds = settings.lease_seconds
        self.progress_interval = progress_interval
        self._device = ThreadPoolExecutor(1, thread_name_prefix="imagine-device")
        threads = post_threads or min(4, os.cpu_count() or 2)
        self._post = ThreadPoolExecutor(threads, thread_name_prefix="imagine-post")
        self._finishing: set[asyncio.Task[None]] = set()
        # The next job, claimed while the current render's last step runs (see _prefetch).
        self._next: asyncio.Task[list[Job]] | None = None
        self._stop = asyncio.Event()
        self._drain = asyncio.Event()
        self.device_busy_seconds = 0.0
        self.jobs_done = 0
        self._capabilities: dict[str, Any] = {}

    async def run(
        self, stop: asyncio.Event, *, once: bool = False, drain: asyncio.Event | None = None
    ) -> None:
        """Serve until ``stop`` or ``drain`` is set (or, with ``once``, the queue is empty)."""
        self._stop = stop
        self._drain = drain = drain or asyncio.Event()
        bind(worker_id=self.worker_id)
        loop = asyncio.get_running_loop()
        description = await loop.run_in_executor(self._device, self.engine.prepare)
        self._capabilities = self.engine.capabilities()
        await persist("registering", lambda: self._register(description))
        log.info("worker %s ready with %s", self.worker_id, description)
        if self.health is not None:
            self.health.model_loaded(description)
        housekeeping = asyncio.create_task(self._housekeeping(stop, description))
        try:
            while not stop.is_set() and not drain.is_set():
                claimed = await self._take_next()
                if claimed and drain.is_set():
                    for job in claimed:  # claimed before the drain; not in hand
                        await self._give_back(job)
                    break
                if not claimed:
                    if once and not self._finishing:
                        break
                    # A job finishing here may free its user's running cap, so the end of any
                    # of ours is a reason to try again, besides a new job or the poll timeout.
                    await first(
                        self.queue.db.wait_for_job(self.settings.poll_interval),
                        *(asyncio.shield(task) for task in self._finishing),
                        stop.wait(),
                        drain.wait(),
                    )
                    continue
                if len(claimed) == 1:
                    await self._run_job(claimed[0], stop)
                else:
                    await run_batch(self, claimed, stop)
                # Back-pressure: never let finished-but-unstored results pile up in memory.
                while len(self._finishing) >= MAX_FINISHING:
                    await asyncio.wait(set(self._finishing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            housekeeping.cancel()
            await self._give_back_next()
            if self._finishing:
                await asyncio.gather(*self._finishing, return_exceptions=True)
            await asyncio.gather(housekeeping, return_exceptions=True)
            self._device.shutdown(wait=True)
            self._post.shutdown(wait=True)

    def _prefetch(self) -> None:
        """Claim the next job now, while the device finishes the current one.

        Called at a render's last step, so the next render starts the moment the device is free
        (the claim's database round trip overlaps the last step and the VAE decode). Only when
        no other result waits for storing, so a prefetched job never waits on back-pressure.
        """
        halted = self._stop.is_set() or self._drain.is_set()
        if self._next is None and not halted and not self._finishing:
            self._next = asyncio.create_task(self._claim())

    async def _take_next(self) -> list[Job]:
        if self._next is None:
            return await self._claim()
        task, self._next = self._next, None
        return await task

    async def _give_back_next(self) -> None:
        if self._next is None:
            return
        for job in await self._take_next():
            await self._give_back(job)

    async def _give_back(self, job: Job) -> None:
        try:
            await persist(f"job {job.id}", lambda: self.queue.release(job.id, self.worker_id))
        except StorageError as exc:
            log.error("job %s: could not give it back: %s", job.id, exc)

    async def _claim(self) -> list[Job]:
        """The next job in fair order, with compatible ones handed out right after it
        (``max_batch_jobs``, ``gpu_worker.batch_jobs``)."""
        try:
            return await claim_batch(
                self._claim_some, self.settings.max_batch_jobs, self._give_back
            )
        except (StorageError, SQLAlchemyError, OSError) as exc:
            # A database that went away is waited for (the poll interval), never fatal.
            log.error("claim failed: %s", exc)
            return []

    async def _claim_some(self, limit: int) -> list[Job]:
        return await self.queue.claim(self.worker_id, limit, capabilities=self._capabilities)

    async def _housekeeping(self, stop: asyncio.Event, description: str) -> None:
        """Reap expired leases and refresh this worker's last-seen time."""
        interval = max(0.5, min(self.lease_seconds / 2, 30.0))
        while not stop.is_set():
            await first(asyncio.sleep(interval), stop.wait())
            try:
                reaped = await self.queue.reap_expired()
                if reaped:
                    log.warning("took back %d job(s) whose worker stopped responding", reaped)
                await self._register(description)
            except (StorageError, SQLAlchemyError, OSError) as exc:
                log.error("housekeeping failed: %s", exc)

    async def _register(self, description: str) -> None:
        await self.queue.register_worker(
            self.worker_id, socket.gethostname(), description, self._capabilities
        )

    # -- one job -------------------------------------------------------------------------------

    async def _run_job(self, job: Job, stop: asyncio.Event) -> None:
        # Every log line about this job (its keep-alive and finishing tasks too) carries its ids.
        with bound(job_id=job.id, user_id=job.user_id):
            await self._run_held(job, stop)

    async def _run_held(self, job: Job, stop: asyncio.Event) -> None:
        held = Held(job)
        self._observe_wait(job)
        keepalive = asyncio.create_task(self._keepalive(held))
        watcher = asyncio.create_task(on_set(stop, lambda: held.stop("shutdown")))
        try:
            task = await self._task_for(job)
        except Exception as exc:  # the per-job error boundary: record it, keep serving
            watcher.cancel()
            await self._failed(held, keepalive, exc)
            return
        try:
            await self._render_one(held, keepalive, task)
        finally:
            watcher.cancel()

    def _observe_wait(self, job: Job) -> None:
        if self.metrics is not None and job.created_at is not None and job.created_at.tzinfo:
            waited = (datetime.now(UTC) - job.created_at).total_seconds()
            self.metrics.wait_seconds.observe(max(0.0, waited))

    async def _render_one(
        self, held: Held, keepalive: asyncio.Task[None], task: RenderTask
    ) -> None:
        """Render a held job on the device; record its abort or failure, or start finishing."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            ids = contextvars.copy_context()  # the device thread logs with the job's ids
            on_step = self._step_reporter(held, loop)
            render = functools.partial(
                self.engine.render, on_step=on_step, cancelled=held.abort.is_set
            )
            result = await loop.run_in_executor(self._device, ids.run, render, task)
        except JobCancelled:
            await self._aborted(held, keepalive)
            return
        except Exception as exc:  # the per-job error boundary: record it, keep serving
            await self._failed(held, keepalive, exc)
            return
        finally:
            self.device_busy_seconds += time.perf_counter() - started
        self._track(self._finish(held, keepalive, result))

    def _track(self, finishing: Coroutine[Any, Any, None]) -> None:
        """Run a finishing coroutine in the background, counted for back-pressure."""
        task = asyncio.create_task(finishing)
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    def _step_reporter(self, held: Held, loop: asyncio.AbstractEventLoop) -> StepCallback:
        """Device thread: a job's step callback (progress, previews, the next claim)."""
        return step_reporter(held, loop, self.progress_interval, self._prefetch)

    def _keepalive(self, held: Held) -> Coroutine[Any, Any, None]:
        interval = min(self.lease_seconds / 3, self.progress_interval)
        return keep_alive(held, self.queue, self.worker_id, interval)

    async def _task_for(self, job: Job) -> RenderTask:
        """The render task for a job, with its input images loaded from the store."""
        # Decoded in the idle device thread, so the next input reuses the memory just freed.
        return await task_for(job, self.queue, self.images, decoder=self._device)

    async def _finish(
        self, held: Held, keepalive: asyncio.Task[None], result: RenderResult
    ) -> None:
        """Post-processing: encode, store and finish (overlaps the next render)."""
        job = held.job
        try:
            stored = await store_images(result, self.images, self._post)
            # No lease renewal may race the finishing write (it would find the lease gone).
            keepalive.cancel()
            # The images are stored: the finish must land, however long the database is busy.
            done = await persist(
                f"job {job.id}: finishing",
                lambda: self.queue.finish(
                    job.id, self.worker_id, stored, gpu_seconds=result.seconds, rendered=result.info
                ),
            )
            self.jobs_done += 1
            if self.metrics is not None:
                self.metrics.gpu_seconds.inc(result.seconds)
                self.metrics.jobs.labels(kind=str(job.kind), status=str(done.status)).inc()
                self.metrics.run_seconds.labels(kind=str(job.kind)).observe(
                    time.monotonic() - held.claimed_at
                )
            log.info("job %s %s in %.2fs of device time", job.id, done.status, result.seconds)
        except LeaseLost as exc:
            log.warning("job %s finished after its lease was lost: %s", job.id, exc)
        except Exception as exc:  # the per-job error boundary
            await self._record_failure(job, exc, retry=True)
        finally:
            keepalive.cancel()

    async def _aborted(self, held: Held, keepalive: asyncio.Task[None]) -> None:
        keepalive.cancel()
        job_id = held.job.id
        try:
            if held.reason == "cancel":
                await persist(
                    f"job {job_id}", lambda: self.queue.mark_cancelled(job_id, self.worker_id)
                )
                log.info("job %s cancelled", job_id)
                if self.metrics is not None:
                    self.metrics.jobs.labels(kind=str(held.job.kind), status="cancelled").inc()
            elif held.reason == "shutdown":
                await persist(f"job {job_id}", lambda: self.queue.release(job_id, self.worker_id))
                log.info("job %s given back to the queue: shutting down", job_id)
        except LeaseLost:
            log.warning("job %s: lease already lost", job_id)
        except StorageError as exc:
            log.error("job %s: could not record the abort: %s", job_id, exc)

    async def _failed(self, held: Held, keepalive: asyncio.Task[None], exc: Exception) -> None:
        keepalive.cancel()
        if held.reason == "lost":
            return
        if isinstance(exc, DatabaseUnavailable):
            # Nothing is wrong with the job: give it back without spending an attempt.
            log.warning(
                "job %s: database unavailable (%s); back to the queue", held.job.id, exc.detail
            )
            held.reason = "shutdown"
            await self._aborted(held, keepalive)
            return
        # Engine errors about the job itself would fail again anywhere; a model that cannot
        # load here might load on another host.
        retry = not isinstance(exc, EngineError) or isinstance(exc, ModelLoadError)
        await self._record_failure(held.job, exc, retry=retry)

    async def _record_failure(self, job: Job, exc: Exception, *, retry: bool) -> None:
        failure = Failure.of(exc)
        log.error("job %s failed %s", job.id, failure, exc_info=not isinstance(exc, EngineError))
        try:
            after = await persist(
                f"job {job.id}",
                lambda: self.queue.fail(job.id, self.worker_id, failure.stored, retry=retry),
            )
        except (LeaseLost, StorageError) as again:
            log.error("job %s: could not record the failure: %s", job.id, again)
            return
        if self.metrics is not None and after.status.finished:
            self.metrics.jobs.labels(kind=str(job.kind), status=str(after.status)).inc()


async def run_worker(
    settings: WorkerSettings,
    *,
    stop: asyncio.Event,
    queue: JobQueue,
    images: ImageStore,
    engine: RenderEngine | None = None,
    worker_id: str | None = None,
    metrics: Metrics | None = None,
    once: bool = False,
    progress_interval: float = PROGRESS_INTERVAL,
    drain: asyncio.Event | None = None,
) -> None:
    """Run a worker until ``stop`` is set; builds the SDXL engine from settings unless given."""
    if engine is None:
        from gpu_worker.batching import BatchEngine
        from gpu_worker.models import ModelRegistry

        engine = BatchEngine(ModelRegistry(settings.engine))
    async with health_server(settings.worker_health_port, queue.db) as health:
        worker = Worker(
            settings,
            queue=queue,
            images=images,
            engine=engine,
            worker_id=worker_id,
            metrics=metrics,
            progress_interval=progress_interval,
            health=health,
        )
        await worker.run(stop, once=once, drain=drain)
