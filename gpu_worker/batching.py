"""Cross-job batching: compatible txt2img jobs rendered together in one pipeline call.

Which jobs may share a call is decided twice. ``batch_key`` looks only at the stored job (no
model needed), so the loop can pick, among the jobs the fair claim handed out, those worth
rendering together (``gpu_worker.batch_jobs``). ``BatchEngine.render_batch`` then prepares each
job exactly as a render of it alone would (profile, LoRA styles, translation, sampling plan,
prompt embeddings, starting noise) and groups those whose call would be the same: the same
pipeline and model, size, schedule, ``--stop``, guidance scale and tiling, no ControlNet,
references or image inputs, and embeddings of the same length (a prompt over 75 tokens is
encoded in more chunks, and padding it would change its images). Whatever does not fit renders
alone, through ``Engine.render``.

One shared call concatenates each job's prompt embeddings (repeated per image, ``--weird``
applied per image) and starting latents (drawn, with ``--chaos``, from that image's own
generator), and passes one ``torch.Generator`` per image, seeded ``seed + i`` of its own job.
Nothing random is drawn from another job's generators, so each job's images depend only on its
own request and seeds: they equal rendering it alone up to floating-point rounding in
batch-size-dependent kernels (tested on the tiny model). A job's GPU seconds are its share of
the call, by image count. Out of memory, the group falls back to one call per job (which splits
further, as a grid does).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from gpu_worker.conditioning import Conditioning
from gpu_worker.engine import Engine, _Run
from gpu_worker.errors import InvalidTask, JobCancelled
from gpu_worker.features import Prepared
from gpu_worker.task import (
    CancelCheck,
    RenderResult,
    RenderTask,
    StepCallback,
    StepEvent,
    check_task,
)
from gpu_worker.tiling import circular_padding
from storage.contract import Job, JobKind
from storage.families import SDXL

log = logging.getLogger(__name__)
_CPU = torch.device("cpu")

# Request fields that shape only a job's own conditioning (text, --no, --weird noise) or its
# own starting noise (seed, --chaos); every other field must be equal to share a call.
PER_JOB_FIELDS = frozenset(
    {"prompt", "segments", "negative_prompt", "seed", "chaos", "weird", "notes", "translate"}
)
_TXT2IMG_KINDS = (JobKind.IMAGINE, JobKind.REROLL)


def batch_key(job: Job) -> str | None:
    """What must be equal for two jobs to share a pipeline call; None for a job that never
    does (image inputs, ControlNet, edits, variations, upscales)."""
    request = job.request
    if job.kind not in _TXT2IMG_KINDS or job.input_images or job.edit is not None:
        return None
    if job.strength is not None or request.image_urls or request.control is not None:
        return None
    shared = {k: v for k, v in request.to_dict().items() if k not in PER_JOB_FIELDS}
    return json.dumps(shared, sort_keys=True, default=str)


def pick_batch(jobs: Sequence[Job]) -> tuple[list[Job], list[Job]]:
    """Split jobs claimed in fair order into the batch to render now (the first job and every
    later one that may share its call) and the rest, to give back."""
    if not jobs:
        return [], []
    head, key = jobs[0], batch_key(jobs[0])
    if key is None:
        return [head], list(jobs[1:])
    batch = [head] + [job for job in jobs[1:] if batch_key(job) == key]
    taken = {job.id for job in batch}
    return batch, [job for job in jobs if job.id not in taken]


@dataclass
class _Member:
    """One task of a shared call, prepared as a render of it alone would be."""

    index: int
    task: RenderTask
    prepared: Prepared
    run: _Run
    key: tuple[Any, ...]


class BatchEngine(Engine):
    """The SDXL engine plus ``render_batch``: several tasks, compatible ones in one call."""

    def render_batch(
        self,
        tasks: Sequence[RenderTask],
        *,
        on_steps: Sequence[StepCallback | None] | None = None,
        cancelled: CancelCheck | None = None,
    ) -> list[RenderResult]:
        """Render every task (results in order); ``on_steps[i]`` gets task i's steps with its
        own latents. Raises ``JobCancelled`` when ``cancelled()`` turns true."""
        callbacks = list(on_steps) if on_steps is not None else [None] * len(tasks)
        if len(callbacks) != len(tasks):
            raise ValueError(f"{len(tasks)} tasks but {len(callbacks)} step callbacks")
        self._threads()
        results: list[RenderResult | None] = [None] * len(tasks)
        groups: dict[tuple[Any, ...], list[_Member]] = {}
        # Preparing a task switches its LoRA styles on (and every other one off): the styles
        # active now are those of the last task prepared.
        active: tuple[Any, ...] | None = None
        for index, task in enumerate(tasks):
            member = self._member(index, task, cancelled)
            if member is None:
                results[index] = self.render(task, on_step=callbacks[index], cancelled=cancelled)
                active = None
            else:
                groups.setdefault(member.key, []).append(member)
                active = member.key
        for key, members in groups.items():
            if len(members) > 1 and key != active:
                self.features.prepare(self.registry, members[0].task.request)
            # A lone member renders through ``render``, which prepares it itself.
            active = key
            for member, result in zip(
                members, self._shared(members, callbacks, cancelled), strict=True
            ):
                results[member.index] = result
        done = [result for result in results if result is not None]
        assert len(done) == len(tasks), "every task was rendered"
        return done

    def _member(
        self, index: int, task: RenderTask, cancelled: CancelCheck | None
    ) -> _Member | None:
        """The task prepared for a shared call, or None when it must render alone."""
        if self.registry.family(task.request.model) != SDXL:
            return None  # shared calls are the SDXL pipelines'; other families render alone
        images = (task.init_images, task.prompt_images, task.style_images, task.character_images)
        if task.kind not in _TXT2IMG_KINDS or any(images) or task.edit is not None:
            return None
        if task.request.control is not None or task.strength is not None:
            return None
        try:
            check_task(task)
        except InvalidTask:
            return None  # rendered alone, where the error names the problem
        prepared = self.features.prepare(self.registry, task.request)
        model, plan = prepared.model, prepared.plan
        # Without image inputs or a ControlNet nothing but the prompt steers the task.
        width, height = task.size or self.render_size(model, task.request, prepared.native)
        conditioning = self.conditioning(model, plan)
        run = _Run(model, plan, conditioning, width, height, None, cancelled, None, None)
        key = (
            id(model),
            width,
            height,
            run.schedule_steps(),
            plan.guidance_scale,
            plan.tile,
            json.dumps({k: v for k, v in prepared.info.items() if k != "translation"}),
            tuple(conditioning.prompt_embeds.shape[1:]),
            tuple(conditioning.negative_prompt_embeds.shape[1:]),
        )
        return _Member(index, task, prepared, run, key)

    def _shared(
        self,
        members: Sequence[_Member],
        callbacks: Sequence[StepCallback | None],
        cancelled: CancelCheck | None,
    ) -> list[RenderResult]:
        """One pipeline call for ``members`` (or one each, when they are alone or out of
        memory together)."""
        if len(members) == 1:
            (member,) = members
            return [self.render(member.task, on_step=callbacks[member.index], cancelled=cancelled)]
        try:
            return self._call(members, callbacks, cancelled)
        except torch.OutOfMemoryError:
            if members[0].prepared.model.device.type == "cuda":
                torch.cuda.empty_cache()
            images = sum(len(m.task.indices) for m in members)
            log.warning(
                "out of memory batching %d jobs (%d images); one by one", len(members), images
            )
            return [
                self.render(m.task, on_step=callbacks[m.index], cancelled=cancelled)
                for m in members
            ]

    def _call(
        self,
        members: Sequence[_Member],
        callbacks: Sequence[StepCallback | None],
        cancelled: CancelCheck | None,
    ) -> list[RenderResult]:
        started = time.perf_counter()
        first = members[0]
        model, plan, run = first.prepared.model, first.prepared.plan, first.run
        generators: list[torch.Generator] = []
        starts: list[torch.Tensor] = []
        parts: list[Conditioning] = []
        for member in members:
            seed = member.task.seed
            own = [torch.Generator(device=_CPU).manual_seed(seed + i) for i in member.task.indices]
            latents, conditioning = member.run.inputs(own)
            assert latents is not None, "txt2img draws its starting latents"
            generators += own
            starts.append(latents)
            parts.append(conditioning)
        sizes = [len(member.task.indices) for member in members]
        schedule, stop_after = run.schedule_steps()
        steps = _SharedSteps(stop_after, sizes, [callbacks[m.index] for m in members], cancelled)
        conditioning = Conditioning.cat(parts)
        tiling = circular_padding(model.txt2img.unet, model.txt2img.vae) if plan.tile else None
        rendering = self.compiles.rendering(model.fast, run.width, run.height, len(generators))
        with tiling or contextlib.nullcontext(), rendering:
            output = model.txt2img(
                width=run.width,
                height=run.height,
                num_inference_steps=schedule,
                guidance_scale=plan.guidance_scale,
                generator=generators,
                latents=torch.cat(starts),
                callback_on_step_end=steps,
                output_type="pil",
                **conditioning.pipeline_kwargs(),
            )
        images = list(output.images)
        seconds = time.perf_counter() - started
        total = sum(sizes)
        results, offset = [], 0
        for member, size in zip(members, sizes, strict=True):
            task = member.task
            results.append(
                RenderResult(
                    images=images[offset : offset + size],
                    seeds=[task.seed + i for i in task.indices],
                    width=run.width,
                    height=run.height,
                    steps_run=steps.done,
                    seconds=seconds * size / total,
                    model=model.name,
                    info={**member.prepared.info, "batch": {"jobs": len(members), "images": total}},
                )
            )
            offset += size
        return results


class _SharedSteps:
    """The step callback of a shared call: each job gets its own slice of the latents."""

    def __init__(
        self,
        stop_after: int,
        sizes: Sequence[int],
        callbacks: Sequence[StepCallback | None],
        cancelled: CancelCheck | None,
    ) -> None:
        self.stop_after, self.sizes = stop_after, list(sizes)
        self.callbacks, self.cancelled = list(callbacks), cancelled
        self.done = 0

    def __call__(
        self, pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]
    ) -> dict[str, Any]:
        if self.cancelled is not None and self.cancelled():
            raise JobCancelled("cancelled by request")
        self.done += 1
        latents, offset = tensors["latents"], 0
        for size, callback in zip(self.sizes, self.callbacks, strict=True):
            if callback is not None:
                callback(StepEvent(self.done, self.stop_after, latents[offset : offset + size]))
            offset += size
        if self.done >= self.stop_after:
            # Stops the loop; the pipeline still decodes the latents it has.
            pipe._interrupt = True
        return {}
