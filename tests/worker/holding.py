"""A real engine that holds its first render at step 1 (or its last step) until it is aborted
(or, when given a ``release`` event, until that is set).

Used in-process (``started`` is a ``threading.Event``) and as a worker process
(``python -m tests.worker.holding``, configured by environment variables like ``imagine
worker``; it prints ``started <seed>`` when the render is held).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable

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
        release: threading.Event | None = None,
    ) -> None:
        self.inner = inner
        self.release = release
        self.announce = announce
        self.at_last_step = at_last_step
        self.started = threading.Event()
        self.steps_after_hold = 0

    def prepare(self) -> str:
        return self.inner.prepare()

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

        def step(event: StepEvent) -> None:
            if on_step is not None:
                on_step(event)
            hold_here = event.step == (event.total if self.at_last_step else 1)
            if holding and hold_here:
                self.started.set()
                if self.announce:
                    print(f"started {task.seed}", flush=True)
                if not self._wait(abort):
                    raise TimeoutError("the held render was never aborted or released")
            elif holding:
                self.steps_after_hold += 1

        return self.inner.render(task, on_step=step, cancelled=cancelled)

    def _wait(self, abort: threading.Event) -> bool:
        """Until released (when a release event was given) or aborted; ``False`` on time-out."""
        return (self.release or abort).wait(HOLD_LIMIT)


def main() -> int:
    """Run ``imagine worker`` with a holding engine."""
    from imagine.commands.worker import _serve

    settings = Settings.load()
    engine = HoldingEngine(Engine(ModelRegistry(settings.engine())), announce=True)
    return asyncio.run(_serve(settings, once=False, engine=engine))


if __name__ == "__main__":
    sys.exit(main())
