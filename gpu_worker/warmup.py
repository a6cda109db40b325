"""Warm-up before the first job, and the watch that logs any compile after it.

``warm_up`` renders each size bucket once as a 4-image grid, and one single 1024x1024 image (at
the model's native size: the shape of upscale tiles), at ``warmup_steps`` steps, through the
engine's normal render path. With a compiled UNet that compiles one graph per shape, so no job
waits for a compile; on CUDA without compilation it still pays for lazy initialisation (library
handles, kernel loading, the caching allocator's first blocks) before a user would.
``CompileWatch`` counts compiled graphs around every other render: any growth means a job
waited for a compile (a size or batch the warm-up did not cover, or no warm-up at all), and is
logged with the shape that caused it. Each speed profile (turbo, draft) is warmed up after the
default one, so its first job neither builds the profile nor waits for its compile.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch

from gpu_worker.errors import EngineError
from gpu_worker.fastpath import FastPath, FastPathError, compiled_graphs
from gpu_worker.imaging import REFERENCE_RESOLUTION
from storage.contract import GRID_SIZE, GenerationRequest, SpeedMode

if TYPE_CHECKING:
    from gpu_worker.task import RenderResult

log = logging.getLogger(__name__)
WARMUP_PROMPT = "a lighthouse on a cliff at dusk"


class CompileWatch:
    """Counts graphs compiled during renders, except while armed is off (the warm-up)."""

    def __init__(self) -> None:
        self.graphs: int | None = None
        self.recompiles = 0

    def arm(self) -> None:
        """From now on, any new graph is a compile a job waited for."""
        self.graphs = compiled_graphs()

    def disarm(self) -> None:
        """Stop counting (while warming up)."""
        self.graphs = None

    @contextlib.contextmanager
    def rendering(
        self, fast: FastPath | None, width: int, height: int, images: int
    ) -> Iterator[None]:
        """The configured attention kernel around a render, and the recompile check after it."""
        if fast is None:
            yield
            return
        with fast.attention():
            yield
        if not fast.compile or self.graphs is None:
            return
        new = compiled_graphs() - self.graphs
        if new > 0:
            self.recompiles += new
            self.graphs += new
            log.warning(
                "the UNet compiled %d new graph(s) during a %dx%d render of %d image(s): the "
                "warm-up did not cover that shape, so a job waited for the compile",
                new,
                width,
                height,
                images,
            )


def warm_up(
    fast: FastPath,
    render: Callable[[GenerationRequest, tuple[int, ...]], RenderResult],
    watch: CompileWatch,
    profile: str | None = None,
) -> None:
    """Render every warm-up shape once (``render(request, indices)``), logging each; with
    ``profile``, in that speed profile (its own UNet compiles its own graphs)."""
    mode = SpeedMode(profile) if profile else SpeedMode.FAST
    label = f" ({profile} profile)" if profile else ""
    started = time.perf_counter()
    watch.disarm()
    shapes = [(size, tuple(range(GRID_SIZE))) for size in fast.buckets]
    shapes.append(((REFERENCE_RESOLUTION, REFERENCE_RESOLUTION), (0,)))
    for (width, height), indices in shapes:
        request = GenerationRequest(
            prompt=WARMUP_PROMPT,
            segments=((WARMUP_PROMPT, 1.0),),
            width=width,
            height=height,
            steps=fast.warmup_steps,
            mode=mode,
        )
        graphs = compiled_graphs() if fast.compile else 0
        try:
            result = render(request, indices)
        except torch._dynamo.exc.TorchDynamoException as exc:
            reason = " ".join(str(exc).split())[:300]
            raise FastPathError(
                f"torch.compile failed while warming up {width}x{height}: {reason}; "
                "set compile to false or fix the compiler setup"
            ) from exc
        except EngineError as exc:
            # Out of memory here means every job of that size would fail: say so at start.
            raise FastPathError(
                f"the warm-up render of {width}x{height} ({len(indices)} image(s)) failed: "
                f"{exc}; remove that size from size_buckets, enable cpu_offload, or set "
                "warmup to false"
            ) from exc
        compiled = f", {compiled_graphs() - graphs} graph(s) compiled" if fast.compile else ""
        log.info(
            "warm-up%s %dx%d, %d image(s): rendered %dx%d in %.1f s%s",
            label,
            width,
            height,
            len(indices),
            result.width,
            result.height,
            result.seconds,
            compiled,
        )
    if fast.compile:
        watch.arm()
    log.info(
        "warm-up%s done in %.1f s (%d shapes)", label, time.perf_counter() - started, len(shapes)
    )
