"""The engine: turns one job's request into images with its model's family
(``gpu_worker.families``); below, the SDXL family, the engine's own.

- txt2img grid: all images in one batched pipeline call with one ``torch.Generator`` per image,
  seeded ``seed + i``. Image i depends only on the seed and its index, never on the batch: a
  render of ``indices=(i,)`` alone gives grid image i, whatever ``--chaos`` and ``--weird``
  (their per-image noise comes from that image's generator, see ``storage.sampling``). Images
  are requested at SDXL sizes and rendered at the model's native resolution
  (``imaging.scale_size``).
- Image prompts (``input_images``) and variations run img2img over the same components. Image
  prompts are averaged into one init image; their strength is ``1 - 0.25 * iw`` (``--iw 0``
  ignores them almost entirely, the default 1 keeps the composition, 3 stays very close).
  Variations use the job's strength (0.5 subtle, 0.85 strong).
- ``--stylize``, ``--raw``, ``--chaos``, ``--weird`` and ``--stop`` act through the shared
  sampling plan (``storage.sampling``), so the bot's description and the engine agree.
  ``--chaos`` adds low-frequency noise to txt2img starting latents; img2img starts from its
  image instead. At chaos 0 and weird 0 a grid is exactly a plain diffusers call's.
- Edits (Zoom Out, Pan, Make Square, Vary (Region)) run the inpainting pipeline over the same
  components at the job's strength, on a canvas made by ``gpu_worker.editing``; each image is
  composited over that canvas, so the source's pixels survive outside the feathered seam.
- ``--stop`` interrupts the pipeline after that share of the steps and decodes what is there.
- ``--tile`` switches UNet and VAE convolutions to circular padding for this render only.
- Progress: ``on_step`` gets every step with its latents (for previews); ``cancelled`` is polled
  in the same callback and aborts the render at once with ``JobCancelled``.
- Out of memory: the batch is split (4 -> 2 -> 1 images per call) before giving up; per-image
  generators keep the images identical whatever the split.
- Fast path (``gpu_worker.fastpath``): with a compiled UNet sizes snap to the nearest size
  bucket; ``prepare`` warms up (``gpu_worker.warmup``) before the worker claims anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from gpu_worker.conditioning import Conditioning, encode, nudge
from gpu_worker.editing import task_canvas
from gpu_worker.errors import InvalidTask, JobCancelled, OutOfMemory
from gpu_worker.families import renderers
from gpu_worker.features import Features, Guide
from gpu_worker.imaging import blend_images, fit_cover, scale_size
from gpu_worker.models import LoadedModel, ModelRegistry
from gpu_worker.task import (
    CancelCheck,
    RenderResult,
    RenderTask,
    StepCallback,
    StepEvent,
    check_task,
    img2img_steps,
)
from gpu_worker.tiling import circular_padding
from gpu_worker.upscale import upscale
from gpu_worker.warmup import CompileWatch, warm_up
from storage.contract import GenerationRequest, JobKind, SpeedMode
from storage.sampling import SamplingPlan, bilinear_std, composition_grid

_CPU = torch.device("cpu")
log = logging.getLogger(__name__)


def image_prompt_strength(image_weight: float) -> float:
    """img2img strength for image prompts of weight ``--iw`` (0..3)."""
    if not 0 <= image_weight <= 3:
        raise InvalidTask(f"image weight must be between 0 and 3, got {image_weight:g}")
    return max(0.25, 1.0 - 0.25 * image_weight)


class Engine:
    """Renders tasks with models from a registry; one render at a time per engine."""

    def __init__(self, registry: ModelRegistry, *, cpu_threads: int | None = None) -> None:
        self.registry = registry
        self.cpu_threads = cpu_threads
        self.features = Features(registry.extras)
        self.compiles = CompileWatch()
        self._families = renderers(registry, _Sdxl(self), self.render_sdxl)

    def _threads(self) -> None:
        # torch's CPU thread count is per calling thread under OpenMP, and renders run in a
        # worker thread, so it is applied where the work happens.
        if self.cpu_threads is not None and torch.get_num_threads() != self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)

    def prepare(self) -> str:
        """Load the default model and warm it up; returns its source (hub id or directory)."""
        self._threads()
        if self.features.problems:
            log.warning("not offered on this worker: %s", "; ".join(self.features.problems))
        return self._families[self.registry.family(None)].prepare(None)

    def render(
        self,
        task: RenderTask,
        *,
        on_step: StepCallback | None = None,
        cancelled: CancelCheck | None = None,
    ) -> RenderResult:
        """Render ``task`` with its model's family; ``JobCancelled`` once ``cancelled()``."""
        self._threads()
        family = self._families[self.registry.family(task.request.model)]
        return family.render(task, on_step=on_step, cancelled=cancelled)

    def prepare_sdxl(self, name: str | None) -> str:
        """Load an SDXL model and warm it up (``fastpath``); returns its source."""
        model = self.registry.get(name)
        if model.fast is not None and model.fast.compile:
            self.compiles.arm()
        if model.fast is not None and model.fast.warmup:
            for profile in (None, *sorted(self.features.extras.profiles)):
                warm_up(
                    model.fast,
                    lambda request, indices: self.render(RenderTask(request, 0, indices=indices)),
                    self.compiles,
                    profile,
                )
        return model.source

    def capabilities(self) -> dict[str, Any]:
        """What this engine serves: model aliases, profiles, LoRA styles, ControlNets..."""
        return {
            "models": self.registry.names(),
            "families": self.registry.families(),
            **self.features.capabilities(),
        }

    def render_sdxl(
        self,
        task: RenderTask,
        *,
        on_step: StepCallback | None = None,
        cancelled: CancelCheck | None = None,
    ) -> RenderResult:
        """Render a task of an SDXL model."""
        started = time.perf_counter()
        if task.kind is JobKind.UPSCALE:
            # Upscales refine with the model as configured (never a fast profile), the
            # request's LoRA styles switched on and its text in English.
            default = dataclasses.replace(task.request, mode=SpeedMode.FAST)
            prepared = self.features.prepare(self.registry, default)
            side = prepared.model.native_resolution
            with self.compiles.rendering(prepared.model.fast, side, side, 1):
                return upscale(
                    prepared.model,
                    dataclasses.replace(task, request=prepared.request),
                    upscaler_model=self.registry.upscaler_model,
                    on_step=on_step,
                    cancelled=cancelled,
                )
        check_task(task)
        prepared = self.features.prepare(self.registry, task.request)
        model, plan = prepared.model, prepared.plan
        request = task.request
        width, height = task.size or self.render_size(model, request, prepared.native)
        conditioning = self.conditioning(model, plan)
        guide = self.features.guide(model, task, (width, height), plan)
        edit = task_canvas(task, (width, height), model.native_resolution, model.vae_scale_factor)
        init: Image.Image | None = None
        strength: float | None = None
        if edit is not None:
            init, strength = edit.init, task.strength
        elif guide.init_allowed:
            init, strength = self._init_image(task, (width, height))
        runner = _Run(model, plan, conditioning, width, height, on_step, cancelled, init, strength)
        runner.guide = guide
        runner.mask = edit.mask if edit is not None else None
        tiling = circular_padding(model.txt2img.unet, model.txt2img.vae) if plan.tile else None
        rendering = self.compiles.rendering(model.fast, width, height, len(task.indices))
        with tiling or contextlib.nullcontext(), rendering:
            images = runner.run_batched(task.seed, list(task.indices))
        if edit is not None:
            images = [edit.composite(image) for image in images]
        return RenderResult(
            images=images,
            seeds=[task.seed + i for i in task.indices],
            width=width,
            height=height,
            steps_run=runner.steps_done,
            seconds=time.perf_counter() - started,
            model=model.name,
            info={**prepared.info, **guide.info},
        )

    @staticmethod
    def render_size(
        model: LoadedModel, request: GenerationRequest, native: int | None = None
    ) -> tuple[int, int]:
        """The request's size (its bucket when compiled) at ``native`` px, by default the
        model's native resolution (a draft profile renders smaller)."""
        width, height = request.width, request.height
        if model.fast is not None:
            # Snapped in request space, so a profile of another native size snaps alike.
            width, height = model.fast.render_size(width, height)
        side = native or model.native_resolution
        return scale_size(width, height, side, model.vae_scale_factor)

    @staticmethod
    def conditioning(model: LoadedModel, plan: SamplingPlan) -> Conditioning:
        """Prompt embeddings for a plan's segments and negative prompt."""
        return encode(model, plan.segments, plan.negative_prompt)

    @staticmethod
    def _init_image(
        task: RenderTask, size: tuple[int, int]
    ) -> tuple[Image.Image | None, float | None]:
        if task.kind is JobKind.VARIATION:
            if not task.init_images:
                raise InvalidTask("a variation needs its source image, and none was given")
            if task.strength is None or not 0 < task.strength <= 1:
                raise InvalidTask(f"variation strength must be in (0, 1], got {task.strength}")
            return fit_cover(task.init_images[0], size), task.strength
        if task.init_images:
            strength = task.strength or image_prompt_strength(task.request.image_weight)
            return blend_images(task.init_images, size), strength
        return None, None


class _Run:
    """One render's pipeline calls, sharing step accounting across batches."""

    def __init__(
        self,
        model: LoadedModel,
        plan: SamplingPlan,
        conditioning: Conditioning,
        width: int,
        height: int,
        on_step: StepCallback | None,
        cancelled: CancelCheck | None,
        init: Image.Image | None,
        strength: float | None,
    ) -> None:
        self.model = model
        self.plan = plan
        self.conditioning = conditioning
        self.width, self.height = width, height
        self.on_step, self.cancelled = on_step, cancelled
        self.init, self.strength = init, strength
        # Set for edits: the inpainting pipeline repaints where it is white.
        self.mask: Image.Image | None = None
        self.steps_done = 0
        self.total_steps = 0
        self._call_steps = 0
        self._stop_after = 0
        self.guide = Guide()

    def schedule_steps(self) -> tuple[int, int]:
        """(schedule length for the pipeline, steps after which ``--stop`` interrupts)."""
        if self.init is not None and self.strength is not None:
            # img2img skips the first (1 - strength) of the schedule; --stop cuts the rest
            # in the same proportion as it would a full schedule.
            schedule, steps = img2img_steps(self.plan.steps, self.strength)
            stop_after = max(1, round(steps * self.plan.steps_run / self.plan.steps))
            return schedule, min(steps, stop_after)
        return self.plan.steps, self.plan.steps_run

    def run_batched(self, seed: int, indices: Sequence[int]) -> list[Image.Image]:
        """Render grid images ``indices``, splitting the batch when memory runs out."""
        batch = len(indices)
        while True:
            chunks = [list(indices[i : i + batch]) for i in range(0, len(indices), batch)]
            _, stop_after = self.schedule_steps()
            self.total_steps = stop_after * len(chunks)
            self.steps_done = 0
            try:
                images: list[Image.Image] = []
                for chunk in chunks:
                    images += self.call(seed, chunk)
                return images
            except torch.OutOfMemoryError as exc:
                if self.model.device.type == "cuda":
                    torch.cuda.empty_cache()
                if batch == 1:
                    raise OutOfMemory(
                        f"out of memory on {self.model.device} rendering one "
                        f"{self.width}x{self.height} image; lower the size or enable cpu_offload"
                    ) from exc
                batch = max(1, batch // 2)

    def call(self, seed: int, indices: Sequence[int]) -> list[Image.Image]:
        """One pipeline call for grid images ``indices``."""
        model, plan = self.model, self.plan
        schedule, self._stop_after = self.schedule_steps()
        self._call_steps = 0
        generators = [torch.Generator(device=_CPU).manual_seed(seed + i) for i in indices]
        kwargs: dict[str, Any] = {
            "num_inference_steps": schedule,
            "guidance_scale": plan.guidance_scale,
            "generator": generators,
            "callback_on_step_end": self._callback,
            "output_type": "pil",
        }
        latents, conditioning = self.inputs(generators)
        kwargs.update(conditioning.pipeline_kwargs())
        guide = self.guide
        if latents is not None:
            kwargs["latents"] = latents
            pipe = guide.txt2img or model.txt2img
            extra = guide.call_kwargs(False, len(indices))
            result = pipe(width=self.width, height=self.height, **kwargs, **extra)
        elif self.mask is not None:
            kwargs["image"] = [self.init] * len(indices)
            kwargs["mask_image"] = [self.mask] * len(indices)
            kwargs["strength"] = self.strength
            result = model.inpaint(width=self.width, height=self.height, **kwargs)
        else:
            kwargs["image"] = [self.init] * len(indices)
            kwargs["strength"] = self.strength
            extra = guide.call_kwargs(True, len(indices))
            result = (guide.img2img or model.img2img)(**kwargs, **extra)
        images: list[Image.Image] = list(result.images)
        return images

    def inputs(
        self, generators: Sequence[torch.Generator]
    ) -> tuple[torch.Tensor | None, Conditioning]:
        """Starting latents (txt2img only) and conditioning, one image per generator.

        Each image's draws come from its own generator in the order ``storage.sampling``
        documents: white noise, ``--weird`` noise, chaos composition noise; a knob at 0 draws
        nothing.
        """
        model = self.model
        batch = self.conditioning.repeat(len(generators))
        embeds = batch.prompt_embeds.clone()
        pooled = batch.pooled_prompt_embeds.clone()
        starts: list[torch.Tensor] = []
        shape = (1, *self.latent_shape())
        for i, gen in enumerate(generators):
            # The white noise is drawn first and exactly as diffusers draws it, so unperturbed
            # images match a plain pipeline call with the same generators.
            white = None
            if self.init is None:
                white = randn_tensor(shape, generator=gen, device=_CPU, dtype=model.dtype)
            nudge(batch, (embeds, pooled), i, gen, self.plan.weird_scale)
            if white is not None:
                starts.append(self.add_composition(white, gen))
        conditioning = Conditioning(
            embeds, pooled, batch.negative_prompt_embeds, batch.negative_pooled_prompt_embeds
        )
        latents = torch.cat(starts).to(model.device) if starts else None
        return latents, conditioning

    def latent_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image's latents."""
        factor = self.model.vae_scale_factor
        channels = int(self.model.txt2img.unet.config.in_channels)
        return channels, self.height // factor, self.width // factor

    def add_composition(self, start: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``start`` with ``--chaos`` composition noise mixed in (unchanged at chaos 0)."""
        channels, height, width = self.latent_shape()
        native = self.model.native_resolution // self.model.vae_scale_factor
        amplitude = self.plan.composition_amplitude(width, height, native)
        if amplitude <= 0:
            return start
        across, down = composition_grid(width, height, native)
        corners = torch.randn(
            (1, channels, down + 1, across + 1), generator=generator, dtype=torch.float32
        )
        smooth = torch.nn.functional.interpolate(
            corners, size=(height, width), mode="bilinear", align_corners=True
        )
        rows = torch.tensor(bilinear_std(height, down), dtype=torch.float32)
        cols = torch.tensor(bilinear_std(width, across), dtype=torch.float32)
        composition = smooth / torch.outer(rows, cols)
        mixed = (start.float() + amplitude * composition) / math.sqrt(1.0 + amplitude**2)
        return mixed.to(start.dtype)

    def _callback(
        self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]
    ) -> dict[str, Any]:
        if self.cancelled is not None and self.cancelled():
            raise JobCancelled("cancelled by request")
        self._call_steps += 1
        self.steps_done += 1
        if self.on_step is not None:
            self.on_step(StepEvent(self.steps_done, self.total_steps, tensors["latents"]))
        if self._call_steps >= self._stop_after:
            # Stops the loop; the pipeline still decodes the latents it has.
            pipe._interrupt = True
        return {}


class _Sdxl:
    """The engine's own family, behind the interface of ``gpu_worker.families``."""

    def __init__(self, engine: Engine) -> None:
        self.prepare = engine.prepare_sdxl
        self.render = engine.render_sdxl
