"""What a job asks beyond the plain model, set up before its render: the speed profile, LoRA
styles, and what this worker offers (``capabilities``, registered for the bot to check names).

``prepare`` picks the job's profile (``gpu_worker.profiles``), loads the base model and the
profile's pipelines once, makes exactly the job's LoRA adapters active (``gpu_worker.lora``),
and returns the model and sampling plan to render with, plus ``info``: what painted the job
(stored with its result).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from gpu_worker.extras import Extras
from gpu_worker.lora import Adapter, Adapters, style_adapters, with_triggers
from gpu_worker.models import LoadedModel
from gpu_worker.profiles import DEFAULT_PROFILE, build_profile, pick_profile, profile_plan
from storage.contract import GenerationRequest
from storage.sampling import SamplingPlan

log = logging.getLogger(__name__)


class Models(Protocol):
    """Where base models come from (``gpu_worker.models.ModelRegistry``)."""

    def get(self, name: str | None = None) -> LoadedModel:
        """The loaded model for an alias (None: the default)."""
        ...


@dataclass(frozen=True)
class Prepared:
    """A job's model, sampling plan and render side once its features are applied."""

    model: LoadedModel
    plan: SamplingPlan
    native: int
    info: dict[str, Any] = field(default_factory=dict)


class Features:
    """The optional features one engine offers, and their loaded state."""

    def __init__(self, extras: Extras) -> None:
        self.configured = extras
        self.problems = extras.problems()
        self.extras = extras.available()
        self._profiles: dict[tuple[str, str], LoadedModel] = {}
        self._adapters: dict[str, Adapters] = {}

    def capabilities(self) -> dict[str, Any]:
        """What this worker serves (profiles, LoRA styles, ControlNets...), JSON-ready."""
        return self.extras.capabilities()

    def adapters(self, base: LoadedModel) -> Adapters:
        """The LoRA adapters of a base model (made on first use)."""
        if base.name not in self._adapters:
            self._adapters[base.name] = Adapters(base.txt2img)
        return self._adapters[base.name]

    def prepare(self, models: Models, request: GenerationRequest, plan: SamplingPlan) -> Prepared:
        """Load what the request needs and switch its LoRAs on (and every other one off)."""
        profile = pick_profile(request, self.extras.profiles)
        base = models.get(request.model or (profile.model if profile else None))
        model = base
        adapters: list[Adapter] = []
        if profile is not None:
            key = (base.name, profile.name)
            if key not in self._profiles:
                log.info("building the %s profile over model %s", profile.name, base.name)
                self._profiles[key] = build_profile(base, profile)
            model = self._profiles[key]
            if profile.lora is not None:
                adapters.append(Adapter(f"profile-{profile.name}", profile.lora, 1.0))
        adapters += style_adapters(request.loras, self.extras.loras)
        self.adapters(base).use(model.txt2img, adapters)
        triggers = [self.extras.loras[name].trigger for name, _ in request.loras]
        plan = profile_plan(plan, profile, request.stop)
        plan = dataclasses.replace(plan, segments=with_triggers(plan.segments, triggers))
        info: dict[str, Any] = {"profile": profile.name if profile else DEFAULT_PROFILE}
        if request.loras:
            info["loras"] = [[name, weight] for name, weight in request.loras]
        native = profile.size if profile is not None and profile.size else model.native_resolution
        return Prepared(model=model, plan=plan, native=native, info=info)
