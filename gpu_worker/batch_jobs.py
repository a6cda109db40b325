"""Running several claimed jobs as one batch: claimed, held and finished one by one.

With ``max_batch_jobs`` N above 1 a worker claims its next job exactly as without batching (the
queue's fair order: each user's oldest job first, users interleaved). When that job may share a
call, it claims the N - 1 jobs the same order hands out next, keeps those that may share the
first one's pipeline call (``gpu_worker.batching``) and gives the others back at once, without
spending an attempt and keeping their place in line. No job jumps ahead of the fair order: a
batch is only ever made of the jobs that order hands out next.

Each job of the batch keeps its own lease, renewed by its own keep-alive with its own progress
and preview, so a worker that dies mid-batch leaves every job to the reaper (run again
elsewhere, charged once). When one job's render must stop (cancelled, its lease lost, or the
worker shutting down) the shared call is aborted, that job is settled as a job alone would be,
and the others render again without it: each job's images depend only on its own seeds, so
nothing changes for them. An error in the shared call makes each job render alone, so the
error is recorded on the job it belongs to. Results are stored and finished job by job.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.exc import SQLAlchemyError

from gpu_worker.batching import batch_key, pick_batch
from gpu_worker.config import MAX_BATCH_JOBS
from gpu_worker.errors import JobCancelled
from gpu_worker.held import Held
from gpu_worker.task import CancelCheck, RenderResult, RenderTask, StepCallback
from gpu_worker.waits import on_set
from storage.contract import Job
from storage.errors import StorageError
from storage.logcontext import bound

log = logging.getLogger(__name__)


@runtime_checkable
class BatchRenderEngine(Protocol):
    """An engine that renders several tasks at once (``gpu_worker.batching.BatchEngine``)."""

    def render_batch(
        self,
        tasks: Sequence[RenderTask],
        *,
        on_steps: Sequence[StepCallback | None] | None = None,
        cancelled: CancelCheck | None = None,
    ) -> list[RenderResult]:
        """Render every task, compatible ones in one call (blocking; in the device thread)."""
        ...


class _Worker(Protocol):
    """What a batch needs from the worker that runs it (``gpu_worker.loop.Worker``)."""

    engine: Any
    device_busy_seconds: float

    @property
    def _device(self) -> Executor: ...

    def _observe_wait(self, job: Job) -> None: ...
    def _keepalive(self, held: Held) -> Coroutine[Any, Any, None]: ...
    def _step_reporter(self, held: Held, loop: asyncio.AbstractEventLoop) -> StepCallback: ...
    def _track(self, finishing: Coroutine[Any, Any, None]) -> None: ...
    async def _task_for(self, job: Job) -> RenderTask: ...
    async def _render_one(
        self, held: Held, keepalive: asyncio.Task[None], task: RenderTask
    ) -> None: ...
    async def _aborted(self, held: Held, keepalive: asyncio.Task[None]) -> None: ...
    async def _failed(self, held: Held, keepalive: asyncio.Task[None], exc: Exception) -> None: ...
    async def _finish(
        self, held: Held, keepalive: asyncio.Task[None], result: RenderResult
    ) -> None: ...


def check_batching(max_batch_jobs: int, engine: object) -> None:
    """``ValueError`` naming the problem when batching is asked of what cannot do it."""
    if isinstance(max_batch_jobs, bool) or not 1 <= max_batch_jobs <= MAX_BATCH_JOBS:
        raise ValueError(
            f"max_batch_jobs must be a whole number from 1 (no batching) to {MAX_BATCH_JOBS}, "
            f"got {max_batch_jobs!r}"
        )
    if max_batch_jobs > 1 and not isinstance(engine, BatchRenderEngine):
        raise ValueError(
            f"max_batch_jobs is {max_batch_jobs} but the engine ({type(engine).__name__}) "
            "renders one job per call; use gpu_worker.batching.BatchEngine or max_batch_jobs 1"
        )


async def claim_batch(
    claim: Callable[[int], Awaitable[list[Job]]],
    limit: int,
    give_back: Callable[[Job], Awaitable[None]],
) -> list[Job]:
    """The next job (``claim(1)``) and, up to ``limit`` in all, the compatible ones among the
    jobs claimed after it; the others are given back."""
    first = await claim(1)
    if not first or limit == 1 or batch_key(first[0]) is None:
        return first
    try:
        more = await claim(limit - 1)
    except (StorageError, SQLAlchemyError, OSError) as exc:
        log.error("job %s: claiming jobs to batch with it failed: %s", first[0].id, exc)
        return first
    batch, rest = pick_batch(first + more)
    for job in rest:
        await give_back(job)
    if len(batch) > 1:
        log.info("batching jobs %s in one call", ", ".join(str(job.id) for job in batch))
    return batch


async def run_batch(worker: _Worker, jobs: Sequence[Job], stop: asyncio.Event) -> None:
    """Render ``jobs`` together, then settle and finish each as its own job."""
    helds = [Held(job) for job in jobs]
    keepalives: dict[int, asyncio.Task[None]] = {}
    for held in helds:
        worker._observe_wait(held.job)
        # Each job's keep-alive logs with its own ids.
        with bound(job_id=held.job.id, user_id=held.job.user_id):
            keepalives[held.job.id] = asyncio.create_task(worker._keepalive(held))

    def shutdown() -> None:
        for held in helds:
            held.stop("shutdown")

    watcher = asyncio.create_task(on_set(stop, shutdown))
    try:
        live: list[tuple[Held, RenderTask]] = []
        for held in helds:
            with bound(job_id=held.job.id, user_id=held.job.user_id):
                try:
                    live.append((held, await worker._task_for(held.job)))
                except Exception as exc:  # the per-job error boundary
                    await worker._failed(held, keepalives[held.job.id], exc)
        await _render_together(worker, live, keepalives)
    finally:
        watcher.cancel()


async def _render_together(
    worker: _Worker, live: list[tuple[Held, RenderTask]], keepalives: dict[int, asyncio.Task[None]]
) -> None:
    loop = asyncio.get_running_loop()
    while len(live) > 1:
        holding = [held for held, _ in live]

        def any_stopped(holding: list[Held] = holding) -> bool:
            return any(held.abort.is_set() for held in holding)

        render = functools.partial(
            worker.engine.render_batch,
            [task for _, task in live],
            on_steps=[worker._step_reporter(held, loop) for held in holding],
            cancelled=any_stopped,
        )
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(
                worker._device, contextvars.copy_context().run, render
            )
        except JobCancelled as exc:
            stopped = [(held, task) for held, task in live if held.abort.is_set()]
            if not stopped:
                log.warning("batched render of jobs %s stopped (%s); one by one", _ids(live), exc)
                break
            for held, _ in stopped:
                with bound(job_id=held.job.id, user_id=held.job.user_id):
                    await worker._aborted(held, keepalives[held.job.id])
            live = [(held, task) for held, task in live if not held.abort.is_set()]
            if live:
                log.info("rendering jobs %s again without the stopped ones", _ids(live))
            continue
        except Exception as exc:
            log.warning("batched render of jobs %s failed (%s); one by one", _ids(live), exc)
            break
        finally:
            worker.device_busy_seconds += time.perf_counter() - started
        worker._track(_finish_all(worker, live, results, keepalives))
        return
    for held, task in live:
        with bound(job_id=held.job.id, user_id=held.job.user_id):
            await worker._render_one(held, keepalives[held.job.id], task)


async def _finish_all(
    worker: _Worker,
    live: Sequence[tuple[Held, RenderTask]],
    results: Sequence[RenderResult],
    keepalives: dict[int, asyncio.Task[None]],
) -> None:
    """Store and finish each job of a rendered batch (one finishing unit for back-pressure)."""
    finishing = []
    for (held, _), result in zip(live, results, strict=True):
        with bound(job_id=held.job.id, user_id=held.job.user_id):
            coroutine = worker._finish(held, keepalives[held.job.id], result)
            finishing.append(asyncio.create_task(coroutine))
    await asyncio.gather(*finishing)


def _ids(live: Sequence[tuple[Held, RenderTask]]) -> str:
    return ", ".join(str(held.job.id) for held, _ in live)
