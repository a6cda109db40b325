"""Stable Cascade jobs: a request and its job kind turned into one prior and one decoder call.

- Grids (imagine, re-roll): the prompt's ``::`` segments and ``--no`` text are encoded and
  blended as for SDXL (``cascade.encode``); ``--stylize`` / ``--raw`` set the prior's guidance
  at 4/7 of SDXL's (``prior_guidance``: 4.0 at the default, Stable Cascade's recommended
  value); ``--steps`` / ``--q`` are the prior's steps, the decoder always runs
  ``DECODER_STEPS``; ``--stop`` ends the prior early and the decoder paints from its latents
  as they are. Image prompts condition the prior through its CLIP image encoder
  (``images=``), at one weight.
- V1-V4 and Vary (Subtle/Strong): the source image conditions the prior the same way, with the
  job's prompt and seed; Stable Cascade has no img2img strength, so subtle and strong paint
  alike.
- Upscales go to the SDXL upscaler with an SDXL model of this worker (the default model when
  it is SDXL, else the first SDXL alias); with none, the job fails saying so.
- What needs SDXL components (LoRA styles, ControlNets, fast profiles, IP-Adapter references,
  inpainting edits) is refused with the reason (``storage.families.refusal``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from diffusers.utils import logging as diffusers_logging
from PIL import Image
from transformers.utils import logging as _transformers_logging

from gpu_worker.errors import InvalidTask, ModelLoadError, short_reason
from gpu_worker.families.cascade import (
    DECODER_STEPS,
    CascadeModel,
    encode,
    load,
    needs_prior,
    render,
)
from gpu_worker.imaging import fit_cover
from gpu_worker.sources import parse, resolve
from gpu_worker.task import (
    CancelCheck,
    RenderResult,
    RenderTask,
    StepCallback,
    StepEvent,
    check_task,
)
from storage.contract import JobKind
from storage.families import CASCADE, SDXL, refusal
from storage.sampling import sampling_plan

if TYPE_CHECKING:
    from gpu_worker.models import ModelRegistry

transformers_logging: Any = _transformers_logging
# What a hub download of each published half needs (not the lite variants or the original
# checkpoints beside them).
_COMMON_FILES = ["model_index.json", "text_encoder/*", "tokenizer/*", "scheduler/*"]
_DECODER_FILES = [*_COMMON_FILES, "decoder/*", "vqgan/*", "prior_*/*"]
_PRIOR_FILES = [*_COMMON_FILES, "prior/*", "image_encoder/*", "feature_extractor/*"]
# Stable Cascade's recommended prior guidance (4.0) at SDXL's default (7.0).
GUIDANCE_RATIO = 4.0 / 7.0


def prior_guidance(sdxl_guidance: float) -> float:
    """The prior's guidance scale for the SDXL guidance a request's ``--stylize`` maps to."""
    return round(sdxl_guidance * GUIDANCE_RATIO, 4)


class CascadeRenderer:
    """Renders the jobs of Stable Cascade models; upscales through ``sdxl_render``."""

    def __init__(self, registry: ModelRegistry, sdxl_render: Callable[..., RenderResult]) -> None:
        self.registry = registry
        self.sdxl_render = sdxl_render

    def model(self, name: str | None) -> CascadeModel:
        """The loaded Stable Cascade behind an alias (loaded on first use, then kept)."""
        loaded: CascadeModel = self.registry.load_other(name, self._load)
        return loaded

    def _load(self, alias: str, source: str) -> CascadeModel:
        device = self.registry.device()
        # Loading bars are for terminals, not for a service's logs.
        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
        directory = _directory(source, _DECODER_FILES)
        prior = None
        if needs_prior(directory):
            try:
                prior = _directory(prior_of(source), _PRIOR_FILES)
            except ModelLoadError as exc:
                raise ModelLoadError(
                    f"{exc} (model {source!r} holds only the Stable Cascade decoder, so its "
                    f"prior is loaded from {prior_of(source)!r})"
                ) from exc
        cuda = device.type == "cuda"
        return load(alias, source, directory, device, cuda, prior_directory=prior)

    def prepare(self, name: str | None) -> str:
        """Load the model; returns its source."""
        return self.model(name).source

    def render(
        self,
        task: RenderTask,
        *,
        on_step: StepCallback | None = None,
        cancelled: CancelCheck | None = None,
    ) -> RenderResult:
        """Render a grid, variation or re-roll; hand an upscale to the SDXL renderer."""
        started = time.perf_counter()
        request = task.request
        problem = refusal(request, CASCADE, task.kind)
        if problem is not None:
            raise InvalidTask(problem)
        if task.style_images or task.character_images:
            raise InvalidTask(
                "--sref and --cref need the IP-Adapter, an SDXL component; model "
                f"`{request.model or 'default'}` is Stable Cascade"
            )
        if task.kind is JobKind.UPSCALE:
            return self._upscale(task, on_step, cancelled)
        check_task(task)
        model = self.model(request.model)
        plan = sampling_plan(request)
        width, height = task.size or model.size(request.width, request.height)
        images = self._images(model, task, (width, height))
        steps = plan.steps
        total = plan.steps_run + DECODER_STEPS

        def step(done: int, latents: torch.Tensor) -> None:
            if on_step is not None:
                on_step(StepEvent(done, total, latents))

        text = encode(model, plan.segments, plan.negative_prompt)
        guidance = prior_guidance(plan.guidance_scale)
        pictures = render(
            model,
            text=text,
            width=width,
            height=height,
            seed=task.seed,
            indices=task.indices,
            steps=steps,
            guidance=guidance,
            images=images,
            stop_after=plan.steps_run,
            on_step=step,
            cancelled=cancelled,
        )
        return RenderResult(
            images=pictures,
            seeds=[task.seed + i for i in task.indices],
            width=width,
            height=height,
            steps_run=plan.steps_run,
            seconds=time.perf_counter() - started,
            model=model.name,
            info={
                "family": CASCADE,
                "prior_guidance": guidance,
                "decoder_steps": DECODER_STEPS,
            },
        )

    @staticmethod
    def _images(model: CascadeModel, task: RenderTask, size: tuple[int, int]) -> list[Image.Image]:
        """The images that condition the prior: a variation's source, or the image prompts."""
        if task.kind is JobKind.VARIATION:
            if not task.init_images:
                raise InvalidTask("a variation needs its source image, and none was given")
            images = [fit_cover(task.init_images[0], size)]
        else:
            images = list(task.init_images)
        if images and not model.can_vary:
            raise InvalidTask(
                f"model `{model.name}` (Stable Cascade) has no image encoder, so it cannot "
                "vary images or follow image prompts"
            )
        return images

    def _upscale(
        self, task: RenderTask, on_step: StepCallback | None, cancelled: CancelCheck | None
    ) -> RenderResult:
        aliases = [name for name, family in self.registry.families().items() if family == SDXL]
        if not aliases:
            raise InvalidTask(
                "Upscale refines with SDXL, and this server has only Stable Cascade models; "
                "an operator can add an SDXL model (model_aliases) to upscale"
            )
        alias = "default" if "default" in aliases else aliases[0]
        sdxl = dataclasses.replace(task.request, model=None if alias == "default" else alias)
        return self.sdxl_render(
            dataclasses.replace(task, request=sdxl), on_step=on_step, cancelled=cancelled
        )


def prior_of(source: str) -> str:
    """Where a decoder-only Stable Cascade finds its prior: the same name with ``-prior``, as
    published (``stabilityai/stable-cascade-prior``, ``AI-ModelScope/stable-cascade-prior``;
    a local ``/models/stable-cascade`` beside ``/models/stable-cascade-prior``)."""
    parsed = parse(source)
    if parsed.kind == "modelscope":
        return f"modelscope:{parsed.repo}-prior"
    if parsed.kind == "local":
        return str(Path(source).expanduser()).rstrip("/") + "-prior"
    return f"{source}-prior"


def _directory(source: str, files: list[str]) -> Path:
    """A local directory with the model's files: as configured, a ModelScope snapshot, or the
    hub snapshot of ``files`` (downloaded into the Hugging Face cache unless
    ``HF_HUB_OFFLINE``)."""
    resolved = resolve(source)
    path = Path(resolved)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ModelLoadError(
                f"cannot load model {source!r}: the directory has no model_index.json; save "
                "the Stable Cascade pipelines with save_pretrained"
            )
        return path
    if resolved.startswith((".", "/", "~")):
        raise ModelLoadError(f"cannot load model {source!r}: no such directory")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(resolved, allow_patterns=files))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        reason = short_reason(exc)
        raise ModelLoadError(
            f"cannot load model {source!r} (Stable Cascade) from the Hugging Face hub: "
            f"{reason}; check the id and network access, or point it at a local directory"
        ) from exc
