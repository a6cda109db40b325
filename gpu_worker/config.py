"""The settings slices of the worker: the engine's models and devices, and the run loop's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
    # An ESRGAN-type checkpoint for the first 2x of an upscale (Lanczos when unset).
    upscaler_model: Path | None


@dataclass(frozen=True)
class WorkerSettings:
    """What the run loop needs, with its engine's slice (``Settings.worker()``)."""

    worker_id: str | None
    lease_seconds: float
    poll_interval: float
    engine: EngineSettings
