"""ControlNet guidance: ``--control canny|depth[:scale]`` from the job's image prompt.

The control map is made from the first image prompt (or, for a variation, the image prompt of
the grid it varies), cover-cropped to the render size:
- ``canny``: OpenCV's Canny edge detector on the grey image, thresholds 100 (low) and 200
  (high), the values the SDXL canny ControlNets were trained with; white edges on black, RGB.
- ``depth``: the configured ``depth_estimator`` (a transformers ``depth-estimation`` model,
  DPT or Depth Anything style), its relative depth normalised to 0..255, grey as RGB.

The ControlNet for a kind (setting ``controlnets``: kind -> directory or hub id) is loaded once
with ``ControlNetModel.from_pretrained``; its pipelines (``StableDiffusionXLControlNetPipeline``
and, for variations, the img2img one) are built with ``from_pipe`` over the model's components,
so they add only the ControlNet's weights. ``scale`` is ``controlnet_conditioning_scale``
(0..2, default 0.5).
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import diffusers
import numpy as np
import torch
from PIL import Image

from gpu_worker.errors import InvalidTask, ModelLoadError, short_reason
from gpu_worker.imaging import fit_cover
from gpu_worker.models import LoadedModel, _quiet
from gpu_worker.sources import resolve

_diffusers: Any = diffusers
CANNY_LOW = 100
CANNY_HIGH = 200


def canny_map(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """White Canny edges on black at ``size``, thresholds ``CANNY_LOW`` / ``CANNY_HIGH``."""
    grey = np.asarray(fit_cover(image, size).convert("L"))
    edges = cv2.Canny(grey, CANNY_LOW, CANNY_HIGH)
    return Image.fromarray(np.stack([edges] * 3, axis=-1))


def control_scale(scale: float) -> float:
    """A request's ``--control`` conditioning scale, checked (0..2)."""
    scale = float(scale)
    if not 0 <= scale <= 2:
        raise InvalidTask(f"--control scale must be between 0 and 2, got {scale:g}")
    return scale


class ControlNets:
    """The configured ControlNets and depth estimator, loaded on first use and kept."""

    def __init__(self, sources: dict[str, str], depth_estimator: str | None) -> None:
        self.sources = dict(sources)
        self.depth_estimator = depth_estimator
        self._models: dict[str, Any] = {}
        self._pipes: dict[tuple[int, str, bool], Any] = {}
        self._depth: Any = None
        self._lock = threading.Lock()

    def kinds(self) -> list[str]:
        """The control kinds this worker serves."""
        return sorted(self.sources)

    def control_map(
        self, kind: str, image: Image.Image, size: tuple[int, int], device: torch.device
    ) -> Image.Image:
        """The conditioning image of ``kind`` for ``image`` at ``size``."""
        if kind == "canny":
            return canny_map(image, size)
        if kind == "depth":
            return self._depth_map(image, size, device)
        raise InvalidTask(f"--control must be canny or depth, got {kind!r}")

    def pipeline(self, model: LoadedModel, kind: str, *, img2img: bool) -> Any:
        """The model's ControlNet pipeline for ``kind`` (txt2img, or img2img for variations)."""
        if kind not in self.sources:
            offered = ", ".join(self.kinds()) or "none"
            raise ModelLoadError(
                f"--control {kind} needs a {kind} ControlNet, which this worker does not have "
                f"(ControlNets here: {offered})"
            )
        key = (id(model.txt2img), kind, img2img)
        with self._lock:
            if key not in self._pipes:
                controlnet = self._controlnet(kind, model)
                cls = (
                    _diffusers.StableDiffusionXLControlNetImg2ImgPipeline
                    if img2img
                    else _diffusers.StableDiffusionXLControlNetPipeline
                )
                with _quiet():
                    pipe = cls.from_pipe(model.txt2img, controlnet=controlnet, dtype=model.dtype)
                pipe.set_progress_bar_config(disable=True)
                self._pipes[key] = pipe
            return self._pipes[key]

    def _controlnet(self, kind: str, model: LoadedModel) -> Any:
        if kind not in self._models:
            source = self.sources[kind]
            try:
                with _quiet():
                    net = _diffusers.ControlNetModel.from_pretrained(
                        resolve(source), dtype=model.dtype
                    )
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                reason = short_reason(exc)
                raise ModelLoadError(
                    f"cannot load the {kind} ControlNet {source!r}: {reason}"
                ) from exc
            self._models[kind] = net.to(model.device)
        return self._models[kind]

    def _depth_map(
        self, image: Image.Image, size: tuple[int, int], device: torch.device
    ) -> Image.Image:
        if self.depth_estimator is None:
            raise ModelLoadError("--control depth needs depth_estimator, which is not configured")
        with self._lock:
            if self._depth is None:
                from transformers import pipeline

                try:
                    self._depth = pipeline(
                        "depth-estimation", model=resolve(self.depth_estimator), device=device
                    )
                except (OSError, ValueError, RuntimeError, KeyError) as exc:
                    reason = short_reason(exc)
                    raise ModelLoadError(
                        f"cannot load depth_estimator {self.depth_estimator!r}: {reason}"
                    ) from exc
            estimator = self._depth
        with torch.no_grad():
            depth = estimator(fit_cover(image, size))["predicted_depth"]
        values = depth.squeeze().float().cpu().numpy()
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        grey = Image.fromarray((scaled * 255).round().astype(np.uint8)).resize(
            size, Image.Resampling.BICUBIC
        )
        return grey.convert("RGB")
