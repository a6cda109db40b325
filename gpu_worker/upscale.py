"""2x upscale: a plain resize (Lanczos, or an ESRGAN-type model) refined by tiled SDXL img2img.

The refined pass runs on tiles of the model's native size (1024 px for SDXL) that overlap by a
quarter tile; each tile is weighted by a ramp that falls to zero across the overlap towards its
neighbours, and the weighted tiles are averaged, so no seam shows. Only one tile is on the device
at a time, so memory is bounded by the tile size whatever the image size. Denoise strength is the
job's (0.2 subtle, 0.4 creative). A source over ``MAX_UPSCALE_SOURCE_PIXELS`` (2048x2048, so a grid
image upscales twice) is refused before any work.

``settings.upscaler_model`` names an ESRGAN-type checkpoint loaded with spandrel (an optional
dependency: ``pip install spandrel``); without it the resize is Lanczos.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gpu_worker.conditioning import Conditioning, encode
from gpu_worker.errors import InvalidTask, JobCancelled, ModelLoadError
from gpu_worker.models import LoadedModel
from gpu_worker.task import (
    CancelCheck,
    RenderResult,
    RenderTask,
    StepCallback,
    StepEvent,
    img2img_steps,
)
from storage.contract import MAX_UPSCALE_SOURCE_PIXELS
from storage.sampling import SamplingPlan, sampling_plan

SCALE = 2


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``size`` px with at least ``overlap``."""
    if tile >= size:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def feather_mask(
    width: int, height: int, overlap: int, edges: tuple[bool, bool, bool, bool]
) -> np.ndarray:
    """Blend weights for a tile: a linear ramp over ``overlap`` px on edges that have a neighbour.

    ``edges`` says whether there is a neighbour on the (left, top, right, bottom).
    """

    def ramp(length: int, before: bool, after: bool) -> np.ndarray:
        weights = np.ones(length, dtype=np.float32)
        span = min(overlap, length // 2)
        if span > 0:
            # Never exactly zero, so every pixel keeps some weight.
            up = (np.arange(span, dtype=np.float32) + 0.5) / span
            if before:
                weights[:span] = np.minimum(weights[:span], up)
            if after:
                weights[-span:] = np.minimum(weights[-span:], up[::-1])
        return weights

    left, top, right, bottom = edges
    return np.outer(ramp(height, top, bottom), ramp(width, left, right))


def resize_2x(image: Image.Image, upscaler_model: Path | None, device: torch.device) -> Image.Image:
    """The first, plain 2x enlargement."""
    target = (image.width * SCALE, image.height * SCALE)
    if upscaler_model is None:
        return image.resize(target, Image.Resampling.LANCZOS)
    return _model_resize(image, upscaler_model, device).resize(target, Image.Resampling.LANCZOS)


def _model_resize(image: Image.Image, path: Path, device: torch.device) -> Image.Image:
    try:
        import spandrel  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ModelLoadError(
            f"upscaler_model is set to {str(path)!r} but spandrel is not installed; "
            "pip install spandrel, or unset IMAGINE_UPSCALER_MODEL to use Lanczos"
        ) from None
    try:
        descriptor: Any = spandrel.ModelLoader(device=device).load_from_file(str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load upscaler model {str(path)!r}: {exc}") from exc
    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)
    with torch.no_grad():
        out = descriptor(pixels.permute(2, 0, 1)[None].to(device))[0]
    array = (out.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array)


def upscale(
    model: LoadedModel,
    task: RenderTask,
    *,
    upscaler_model: Path | None,
    on_step: StepCallback | None,
    cancelled: CancelCheck | None,
) -> RenderResult:
    """Upscale ``task.init_images[0]`` 2x and refine it tile by tile."""
    started = time.perf_counter()
    if not task.init_images:
        raise InvalidTask("an upscale needs its source image, and none was given")
    source = task.init_images[0]
    if source.width * source.height > MAX_UPSCALE_SOURCE_PIXELS:
        # Checked before any work: memory and tiles grow with the output, 4x the source.
        raise InvalidTask(
            f"the image is {source.width}x{source.height}; upscaling takes images of at most "
            f"{MAX_UPSCALE_SOURCE_PIXELS:,} pixels (2048x2048)"
        )
    strength = task.strength if task.strength is not None else 0.2
    if not 0 < strength <= 1:
        raise InvalidTask(f"upscale strength must be in (0, 1], got {strength}")
    plan = sampling_plan(task.request)
    base = resize_2x(source.convert("RGB"), upscaler_model, model.device)
    width, height = base.size
    tile = model.native_resolution
    overlap = tile // 4
    xs, ys = tile_starts(width, tile, overlap), tile_starts(height, tile, overlap)
    schedule, steps_per_tile = img2img_steps(plan.steps, strength)
    total = steps_per_tile * len(xs) * len(ys)
    conditioning = encode(model, plan.segments, plan.negative_prompt)
    accumulated = np.zeros((height, width, 3), dtype=np.float32)
    weights = np.zeros((height, width, 1), dtype=np.float32)
    done = 0

    def callback(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        nonlocal done
        if cancelled is not None and cancelled():
            raise JobCancelled("cancelled by request")
        done += 1
        if on_step is not None:
            on_step(StepEvent(done, total, tensors["latents"]))
        return {}

    for row, y in enumerate(ys):
        for col, x in enumerate(xs):
            box = (x, y, min(x + tile, width), min(y + tile, height))
            crop = base.crop(box)
            out = _refine(model, crop, conditioning, plan, schedule, strength, task.seed, callback)
            mask = feather_mask(
                crop.width,
                crop.height,
                overlap,
                (col > 0, row > 0, col < len(xs) - 1, row < len(ys) - 1),
            )[..., None]
            pixels = np.asarray(out.convert("RGB"), dtype=np.float32)
            accumulated[box[1] : box[3], box[0] : box[2]] += pixels * mask
            weights[box[1] : box[3], box[0] : box[2]] += mask
    merged = (accumulated / np.maximum(weights, 1e-6)).round().clip(0, 255).astype(np.uint8)
    return RenderResult(
        images=[Image.fromarray(merged)],
        seeds=[task.seed],
        width=width,
        height=height,
        steps_run=done,
        seconds=time.perf_counter() - started,
        model=model.name,
    )


def _refine(
    model: LoadedModel,
    crop: Image.Image,
    conditioning: Conditioning,
    plan: SamplingPlan,
    schedule: int,
    strength: float,
    seed: int,
    callback: Callable[..., dict[str, Any]],
) -> Image.Image:
    generator = torch.Generator(device="cpu").manual_seed(seed)
    result = model.img2img(
        image=crop,
        strength=strength,
        num_inference_steps=schedule,
        guidance_scale=plan.guidance_scale,
        generator=generator,
        callback_on_step_end=callback,
        output_type="pil",
        **conditioning.pipeline_kwargs(),
    )
    image: Image.Image = result.images[0]
    return image
