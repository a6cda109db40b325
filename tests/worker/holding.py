"""A real engine that holds its first render at step 1 (or its last step) until it is aborted
or resumed; a batched render (``render_batch``, when the inner engine batches) holds at step 1.

Used in-process (``started`` and ``resume`` are ``threading.Event``s) and as a worker process
(``python -m tests.worker.holding``, configured by environment variables like ``imagine
worker``; it prints ``started <seed>`` when the render is held, and a line on its stdin resumes
it).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from gpu_worker.batching import BatchEngine
from gpu_worker.engine import Engine
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderResult, RenderTask, StepEvent
from imagine.settings import Settings

HOLD_LIMIT = 120.0


class HoldingEngine:
    """Wraps the real engine; the first render waits at a step until it is aborted."""

    def __init__(
        self,
        inner: Engine,
        *,
        announce: bool = False,
        at_last_step: bool = False,
        resume: threading.Event | None = None,
    ) -> None:
        self.inner = inner
        self.announce = announce
        self.at_last_step = at_last_step
        self.started = threading.Event()
        self.resume = resume or threading.Event()
        self.steps_after_hold = 0

    def prepare(self) -> str:
        return self.inner.prepare()

    def capabilities(self) -> dict[str, Any]:
        return self.inner.capabilities()

    def render(
        self,
        task: RenderTask,
        *,
        on_step: Callable[[StepEvent], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> RenderResult:
        # The worker passes the bound ``is_set`` of its abort event: wait on that event itself.
        abort = getattr(cancelled, "__self__", None)
        assert isinstance(abort, threading.Event), "the worker's abort flag is an Event"
        holding = not self.started.is_set()
        released = threading.Event()

        def step(event: StepEvent) -> None:
            if on_step is not None:
                on_step(event)
            hold_here = event.step == (event.total if self.at_last_step else 1)
            if holding and hold_here:
                self.started.set()
                if self.announce:
                    print(f"started {task.seed}", flush=True)
                # Released by an abort or a resume, whichever comes first.
                for source in (abort, self.resume):
                    threading.Thread(target=_relay, args=(source, released), daemon=True).start()
                if not released.wait(HOLD_LIMIT):
                    raise TimeoutError("the held render was never aborted or resumed")
            elif holding:
                self.steps_after_hold += 1

        return self.inner.render(task, on_step=step, cancelled=cancelled)

    def render_batch(
        self,
        tasks: Sequence[RenderTask],
        *,
        on_steps: Sequence[Callable[[StepEvent], None] | None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> list[RenderResult]:
        assert isinstance(self.inner, BatchEngine), "batching needs a BatchEngine inside"
        assert cancelled is not None
        holding = not self.started.is_set()
        callbacks = list(on_steps or [None] * len(tasks))

        def hold() -> None:
            self.started.set()
            if self.announce:
                print(f"started {tasks[0].seed}", flush=True)
            # A batch stops when any of its jobs does: a function of several events, polled.
            deadline = time.monotonic() + HOLD_LIMIT
            while not self.resume.wait(0.01) and not cancelled():
                if time.monotonic() > deadline:
                    raise TimeoutError("the held batch was never aborted or resumed")

        def wrap(i: int, callback: Callable[[StepEvent], None] | None) -> Any:
            def step(event: StepEvent) -> None:
                if callback is not None:
                    callback(event)
                if holding and i == 0 and event.step > 1:
                    self.steps_after_hold += 1
                if holding and i == len(callbacks) - 1 and event.step == 1:
                    hold()  # after every job of the batch reported its first step

            return step

        steps = [wrap(i, callback) for i, callback in enumerate(callbacks)]
        return self.inner.render_batch(tasks, on_steps=steps, cancelled=cancelled)


def _relay(source: threading.Event, target: threading.Event) -> None:
    if source.wait(HOLD_LIMIT):
        target.set()


def _resume_on_input(engine: HoldingEngine) -> None:
    """A non-empty line on stdin resumes the held render (end of input does not)."""
    if sys.stdin.readline().strip():
        engine.resume.set()


def main() -> int:
    """Run ``imagine worker`` with a holding engine."""
    import logging

    from imagine.commands.worker import _serve

    settings = Settings.load()
    logging.basicConfig(level=settings.log_level.upper())
    engine = HoldingEngine(BatchEngine(ModelRegistry(settings.engine())), announce=True)
    threading.Thread(target=_resume_on_input, args=(engine,), daemon=True).start()
    return asyncio.run(_serve(settings, once=False, engine=engine))


if __name__ == "__main__":
    sys.exit(main())
