"""Speed profiles as pipelines: a profile's scheduler (and distilled UNet) over a base model.

A profile (``gpu_worker.extras.Profile``) is built once per base model with ``from_pipe``: it
shares the base model's text encoders and VAE, and its UNet too unless it brings a distilled one
(loaded with ``UNet2DConditionModel.from_pretrained`` in the model's dtype, on its device, with
the base model's fast path: channels-last, fused projections, compile). A
profile with a distillation LoRA paints with the base UNet and that LoRA switched on
(``gpu_worker.lora``). Jobs in the ``turbo`` and ``draft`` speed modes paint with the profile of
that name; the others with the model as configured (the ``default`` profile).

Scheduler ``euler_trailing`` is Euler with ``timestep_spacing="trailing"`` (the last step lands
on t=0, which SDXL-Lightning and SDXL-Turbo need); ``lcm`` is ``LCMScheduler``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import diffusers
import torch

from gpu_worker.errors import InvalidTask, ModelLoadError, short_reason
from gpu_worker.extras import Profile
from gpu_worker.models import LoadedModel, _quiet, _sdpa, make_scheduler
from gpu_worker.sources import resolve
from storage.contract import GenerationRequest, SpeedMode
from storage.sampling import SamplingPlan, steps_run

_diffusers: Any = diffusers
log = logging.getLogger(__name__)
DEFAULT_PROFILE = "default"
_MODE_PROFILES = {SpeedMode.TURBO: "turbo", SpeedMode.DRAFT: "draft"}


def profile_name(request: GenerationRequest) -> str:
    """The profile a request paints with: its speed mode's, else ``default``."""
    return _MODE_PROFILES.get(request.mode, DEFAULT_PROFILE)


def pick_profile(request: GenerationRequest, profiles: Mapping[str, Profile]) -> Profile | None:
    """The request's profile (None: the default), refusing one this worker does not offer."""
    name = profile_name(request)
    if name == DEFAULT_PROFILE:
        return None
    profile: Profile | None = profiles.get(name)
    if profile is None:
        offered = ", ".join(sorted(profiles)) or "none"
        # Another worker may have it, so this is a load problem (retried), not a bad job.
        raise ModelLoadError(
            f"--{name} paints with the {name} profile, which this worker does not offer "
            f"(profiles here: {offered})"
        )
    if profile.unet is not None and request.model not in (None, profile.model):
        raise InvalidTask(
            f"--{name} paints with its own UNet on model {profile.model or 'default'!r}; "
            f"it cannot be combined with --model {request.model}"
        )
    return profile


def profile_plan(plan: SamplingPlan, profile: Profile | None, stop: int) -> SamplingPlan:
    """The sampling plan with the profile's steps and guidance (``--stop`` still applies)."""
    if profile is None:
        return plan
    return dataclasses.replace(
        plan,
        steps=profile.steps,
        steps_run=steps_run(profile.steps, stop),
        guidance_scale=profile.guidance,
    )


def profile_scheduler(name: str, config: Any) -> Any:
    """A scheduler for a profile, from the base model's scheduler config."""
    with _quiet():
        if name == "euler_trailing":
            # The base config may be DPM-Solver's with Karras sigmas; Euler must not inherit them.
            return _diffusers.EulerDiscreteScheduler.from_config(
                config, timestep_spacing="trailing", use_karras_sigmas=False
            )
        if name == "lcm":
            return _diffusers.LCMScheduler.from_config(config)
        return make_scheduler(name, config)


def build_profile(base: LoadedModel, profile: Profile) -> LoadedModel:
    """The base model's pipelines with the profile's scheduler and UNet."""
    overrides: dict[str, Any] = {
        "scheduler": profile_scheduler(profile.scheduler, base.txt2img.scheduler.config)
    }
    if profile.unet is not None:
        unet = _load_unet(profile, base.device, base.dtype)
        if base.fast is not None:
            notes = base.fast.apply_unet(unet)
            if notes:
                log.info("%s profile UNet: %s", profile.name, "; ".join(notes))
        overrides["unet"] = unet
    with _quiet():
        pipe = type(base.txt2img).from_pipe(base.txt2img, dtype=base.dtype, **overrides)
    pipe.set_progress_bar_config(disable=True)
    # The same fast path (attention kernel, size buckets, the compile watch) as the base model.
    return LoadedModel(
        name=base.name,
        source=base.source,
        txt2img=pipe,
        device=base.device,
        dtype=base.dtype,
        fast=base.fast,
        vae_dtype=base.vae_dtype,
    )


def _load_unet(profile: Profile, device: torch.device, dtype: torch.dtype) -> Any:
    try:
        unet = _diffusers.UNet2DConditionModel.from_pretrained(
            resolve(str(profile.unet)), dtype=dtype
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        reason = short_reason(exc)
        raise ModelLoadError(
            f"cannot load the {profile.name} profile's UNet from {profile.unet}: {reason}"
        ) from exc
    unet.to(device)
    if device.type == "cuda":
        unet.set_attn_processor(_sdpa())
    return unet
