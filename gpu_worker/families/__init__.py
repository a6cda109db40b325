"""Model families: the one place that knows each family the engine serves.

A model's family is detected from its ``model_index.json`` (its ``_class_name``,
``gpu_worker.families.detect``) unless the configuration names it (``model_families``: alias ->
family, ``default`` for the default model). The engine renders every job with its model's
family renderer:

- ``sdxl``: Stable Diffusion XL (``StableDiffusionXLPipeline``): the engine's own pipelines
  (``gpu_worker.engine``), with profiles, LoRA styles, ControlNets and the IP-Adapter.
- ``cascade``: Stable Cascade (``StableCascadeCombinedPipeline``): grids, image prompts,
  variations and re-rolls (``gpu_worker.families.cascade_jobs``); its upscales go to the SDXL
  renderer with an SDXL model of the worker.

What each family honours of a request is plain data in ``storage.families``, shared with the
bot. A model that is neither local nor cached (a hub or ModelScope id not yet downloaded) is
taken for SDXL unless configured: detection never downloads weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from storage.families import CASCADE, SDXL

if TYPE_CHECKING:
    from gpu_worker.models import ModelRegistry
    from gpu_worker.task import CancelCheck, RenderResult, RenderTask, StepCallback


class Renderer(Protocol):
    """A family's side of the engine: loads its models, renders their jobs."""

    def prepare(self, name: str | None) -> str:
        """Load model ``name`` (None: the default) and warm it up; returns its source."""
        ...

    def render(
        self,
        task: RenderTask,
        *,
        on_step: StepCallback | None = None,
        cancelled: CancelCheck | None = None,
    ) -> RenderResult:
        """Render a task of one of this family's models."""
        ...


def renderers(
    registry: ModelRegistry,
    sdxl: Renderer,
    sdxl_render: Callable[..., RenderResult],
) -> dict[str, Renderer]:
    """Each family's renderer; ``sdxl`` is the engine's own, whose render (``sdxl_render``)
    the other families upscale with."""
    # Imported here: ``gpu_worker.families.detect`` stays free of torch for ``imagine doctor``.
    from gpu_worker.families.cascade_jobs import CascadeRenderer

    return {SDXL: sdxl, CASCADE: CascadeRenderer(registry, sdxl_render)}
