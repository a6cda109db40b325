"""The settings slices of the worker: the engine's models and devices, and the run loop's."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The most jobs one batched pipeline call may take (``WorkerSettings.max_batch_jobs``).
MAX_BATCH_JOBS = 8

_SIZE = re.compile(r"([1-9][0-9]{1,4})x([1-9][0-9]{1,4})")


def parse_size(text: str) -> tuple[int, int]:
    """``"1216x832"`` -> ``(1216, 832)``; ``ValueError`` unless both sides are multiples of 64."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1216x832")
    width, height = int(match[1]), int(match[2])
    if width % 64 or height % 64 or not (256 <= width <= 4096 and 256 <= height <= 4096):
        raise ValueError(f"size {text!r} must have sides that are multiples of 64 from 256 to 4096")
    return width, height


@dataclass(frozen=True)
class EngineSettings:
    """Which models the engine serves and how it runs them (``Settings.engine()``)."""

    # The default model: a hub id or a local directory.
    model: str
    # Name -> hub id or directory, for --model NAME, --v N and --niji.
    model_aliases: dict[str, str]
    scheduler: str
    device: str | None
    dtype: str | None
    compile: bool
    cpu_offload: bool
    # The CUDA fast path (``gpu_worker.fastpath``): checked against the device at load.
    channels_last: bool | None
    fuse_qkv: bool
    compile_mode: str
    sdpa_backend: str
    vae_upcast: str
    warmup: bool | None
    warmup_steps: int
    size_buckets: list[str]
    # An ESRGAN-type checkpoint for the first 2x of an upscale (Lanczos when unset).
    upscaler_model: Path | None
    # Alias ("default" for the default model) -> family ("sdxl", "cascade"); unset aliases are
    # detected from the model's model_index.json.
    model_families: dict[str, str] = field(default_factory=dict)
    # The optional features (``gpu_worker.extras``): speed profiles, LoRA styles, ControlNets,
    # an IP-Adapter and a translation model.
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    loras: dict[str, dict[str, Any]] = field(default_factory=dict)
    lora_dir: Path | None = None
    controlnets: dict[str, str] = field(default_factory=dict)
    depth_estimator: str | None = None
    ip_adapter: str | None = None
    ip_adapter_image_encoder: str | None = None
    translation_model: str | None = None


@dataclass(frozen=True)
class WorkerSettings:
    """What the run loop needs, with its engine's slice (``Settings.worker()``)."""

    worker_id: str | None
    lease_seconds: float
    poll_interval: float
    # /healthz and /readyz on this port (off when None).
    worker_health_port: int | None
    engine: EngineSettings
    # Compatible txt2img jobs rendered in one pipeline call (1: off; ``gpu_worker.batch_jobs``).
    max_batch_jobs: int = 1
