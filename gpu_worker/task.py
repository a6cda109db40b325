"""What the engine is asked to render and what it hands back, apart from the engine itself.

The run loop, the engine and the upscaler all speak these types; keeping them here lets the
upscaler be a module of its own that the engine calls, with no arrow back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from PIL import Image

from gpu_worker.errors import InvalidTask
from storage.contract import GRID_SIZE, MAX_SEED, Edit, GenerationRequest, JobKind


@dataclass(frozen=True)
class RenderTask:
    """What to render: a request plus the job facts the engine needs."""

    request: GenerationRequest
    seed: int
    kind: JobKind = JobKind.IMAGINE
    # Image prompts for imagine/reroll jobs; the source image for variations and upscales.
    init_images: tuple[Image.Image, ...] = ()
    strength: float | None = None
    # Which grid images to render; image i uses the generator seeded ``seed + i``.
    indices: tuple[int, ...] = tuple(range(GRID_SIZE))
    # Render at exactly this size instead of the request's size scaled to the model.
    size: tuple[int, int] | None = None
    # A variation's image prompts (those of the grid it varies): its ControlNet source.
    prompt_images: tuple[Image.Image, ...] = ()
    # Style (--sref, weight --sw 0..1000) and character (--cref, --cw 0..100) references,
    # painted through the IP-Adapter when the worker has one.
    style_images: tuple[Image.Image, ...] = ()
    style_weight: int = 100
    character_images: tuple[Image.Image, ...] = ()
    character_weight: int = 100
    # Outpaint and inpaint: the edit of ``init_images[0]``, and a region edit's mask image.
    edit: Edit | None = None
    mask: Image.Image | None = None


def check_task(task: RenderTask) -> None:
    """Refuse image indices outside 0..15 and seeds outside 0..MAX_SEED (``InvalidTask``)."""
    if not task.indices or any(not 0 <= i < 16 for i in task.indices):
        raise InvalidTask(f"image indices must be 0..15, got {list(task.indices)}")
    if not 0 <= task.seed <= MAX_SEED:
        raise InvalidTask(f"seed must be between 0 and {MAX_SEED}, got {task.seed}")


@dataclass(frozen=True)
class StepEvent:
    """One finished denoising step."""

    step: int
    total: int
    latents: torch.Tensor = field(repr=False)

    @property
    def percent(self) -> int:
        """Whole percent done, 0-100."""
        return min(100, math.floor(100 * self.step / max(1, self.total)))


@dataclass(frozen=True)
class RenderResult:
    """The rendered images and what it took."""

    images: list[Image.Image]
    seeds: list[int]
    width: int
    height: int
    steps_run: int
    seconds: float
    model: str
    # What painted it beyond the model (profile, LoRA styles...), stored with the job.
    info: dict[str, Any] = field(default_factory=dict)


StepCallback = Callable[[StepEvent], None]
CancelCheck = Callable[[], bool]


def img2img_steps(steps: int, strength: float) -> tuple[int, int]:
    """(schedule length to ask img2img for, denoising steps it will run) at ``strength``.

    img2img runs ``int(schedule * strength)`` steps; the schedule is lengthened when that would
    be zero, so a short schedule at low strength still denoises once.
    """
    schedule = steps
    while int(schedule * strength) < 1:
        schedule += 1
    return schedule, min(schedule, int(schedule * strength))


class RenderEngine(Protocol):
    """What the loop needs from an engine (``gpu_worker.engine.Engine`` or a stand-in)."""

    def prepare(self) -> str:
        """Load the default model; return a short description of it."""
        ...

    def capabilities(self) -> dict[str, Any]:
        """What it serves beyond the model (profiles, LoRA styles...), registered as JSON."""
        ...

    def render(
        self,
        task: RenderTask,
        *,
        on_step: Callable[[StepEvent], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> RenderResult:
        """Render a task (blocking; called in the device thread)."""
        ...
