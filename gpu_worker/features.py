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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from gpu_worker.control import ControlNets, control_scale
from gpu_worker.errors import InvalidTask, ModelLoadError
from gpu_worker.extras import Extras
from gpu_worker.lora import Adapter, Adapters, style_adapters, with_triggers
from gpu_worker.models import LoadedModel
from gpu_worker.profiles import DEFAULT_PROFILE, build_profile, pick_profile, profile_plan
from gpu_worker.references import (
    IpAdapter,
    Reference,
    character_reference,
    image_prompt_reference,
    style_reference,
)
from gpu_worker.task import RenderTask
from gpu_worker.translate import Translator, needs_translation
from storage.contract import GenerationRequest, JobKind
from storage.sampling import SamplingPlan, sampling_plan

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
    # The request as painted (its text in English when it was translated).
    request: GenerationRequest
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Guide:
    """Pipelines and extra call inputs that steer a render beyond the prompt (ControlNet...).

    ``None`` pipelines mean the model's own. ``init_allowed`` is False when the image prompts
    steer the render some other way instead of being its img2img canvas.
    """

    txt2img: Any = None
    img2img: Any = None
    txt2img_kwargs: dict[str, Any] = field(default_factory=dict)
    img2img_kwargs: dict[str, Any] = field(default_factory=dict)
    init_allowed: bool = True
    info: dict[str, Any] = field(default_factory=dict)
    # Inputs that depend on how many images one pipeline call paints (IP-Adapter embeddings).
    per_batch: Callable[[int], dict[str, Any]] | None = None

    def call_kwargs(self, img2img: bool, batch: int) -> dict[str, Any]:
        """Extra keyword arguments for one pipeline call of ``batch`` images."""
        extra = dict(self.img2img_kwargs if img2img else self.txt2img_kwargs)
        if self.per_batch is not None:
            extra.update(self.per_batch(batch))
        return extra


class Features:
    """The optional features one engine offers, and their loaded state."""

    def __init__(self, extras: Extras) -> None:
        self.configured = extras
        self.problems = extras.problems()
        self.extras = extras.available()
        self._profiles: dict[tuple[str, str], LoadedModel] = {}
        self._adapters: dict[str, Adapters] = {}
        self.controlnets = ControlNets(dict(self.extras.controlnets), self.extras.depth_estimator)
        translation = self.extras.translation_model
        self.translator = Translator(translation) if translation else None
        self.ip_adapter = (
            IpAdapter(self.extras.ip_adapter, self.extras.ip_adapter_image_encoder)
            if self.extras.ip_adapter and self.extras.ip_adapter_image_encoder
            else None
        )

    def capabilities(self) -> dict[str, Any]:
        """What this worker serves (profiles, LoRA styles, ControlNets...), JSON-ready."""
        return self.extras.capabilities()

    def adapters(self, base: LoadedModel) -> Adapters:
        """The LoRA adapters of a base model (made on first use)."""
        if base.name not in self._adapters:
            self._adapters[base.name] = Adapters(base.txt2img)
        return self._adapters[base.name]

    def prepare(self, models: Models, request: GenerationRequest) -> Prepared:
        """Load what the request needs, switch its LoRAs on (and every other one off), and
        translate its text when it is in another script; the plan to render with."""
        profile = pick_profile(request, self.extras.profiles)
        base = models.get(request.model or (profile.model if profile else None))
        request, translation = self.translated(request, base.device)
        plan = sampling_plan(request)
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
        if self.ip_adapter is not None:
            # Off unless this job's references switch it on (see ``guide``).
            self.ip_adapter.use(model, ())
        triggers = [self.extras.loras[name].trigger for name, _ in request.loras]
        plan = profile_plan(plan, profile, request.stop)
        plan = dataclasses.replace(plan, segments=with_triggers(plan.segments, triggers))
        info: dict[str, Any] = {"profile": profile.name if profile else DEFAULT_PROFILE}
        if request.loras:
            info["loras"] = [[name, weight] for name, weight in request.loras]
        if translation is not None:
            info["translation"] = translation
        native = profile.size if profile is not None and profile.size else model.native_resolution
        return Prepared(model=model, plan=plan, native=native, request=request, info=info)

    def translated(
        self, request: GenerationRequest, device: torch.device
    ) -> tuple[GenerationRequest, dict[str, Any] | None]:
        """The request with its non-Latin pieces in English, and what was painted (or None)."""
        if not request.translate or self.translator is None:
            return request, None
        negative = request.negative_prompt
        pieces = [request.prompt, *(text for text, _ in request.segments), negative or ""]
        todo = sorted({piece for piece in pieces if piece and needs_translation(piece)})
        if not todo:
            return request, None
        english = dict(zip(todo, self.translator.translate(todo, device), strict=True))
        request = dataclasses.replace(
            request,
            prompt=english.get(request.prompt, request.prompt),
            segments=tuple((english.get(text, text), w) for text, w in request.segments),
            negative_prompt=english.get(negative, negative) if negative else negative,
        )
        return request, {
            "prompt": request.prompt,
            "segments": [[text, weight] for text, weight in request.segments],
            "negative_prompt": request.negative_prompt,
        }

    def guide(
        self, model: LoadedModel, task: RenderTask, size: tuple[int, int], plan: SamplingPlan
    ) -> Guide:
        """What steers ``task`` besides its prompt: a ControlNet map, IP-Adapter references.

        A grid's image prompts go to the ControlNet when the job asks for one, else to the
        IP-Adapter when the worker has one, else they stay the img2img canvas. Style and
        character references need the IP-Adapter; without one they are left out. They take the
        adapter's place, so beside them a grid's image prompts stay the img2img canvas, and a
        variation still starts from its source image.
        """
        control = self._control(model, task, size) if task.request.control else None
        references = self._references(task, prompts_taken=control is not None)
        if not references:
            return control or Guide()
        steer = self.reference_guide(model, references, plan)
        if control is None:
            return steer
        return dataclasses.replace(
            control, per_batch=steer.per_batch, info={**control.info, **steer.info}
        )

    def _references(self, task: RenderTask, *, prompts_taken: bool) -> tuple[Reference, ...]:
        """The IP-Adapter references of ``task``: its style and character references (both
        together, each in its own slot), else its image prompts, else none."""
        if self.ip_adapter is None:
            return ()
        given = []
        if task.style_images:
            given.append(style_reference(task.style_images, task.style_weight))
        if task.character_images:
            given.append(character_reference(task.character_images, task.character_weight))
        if given:
            return tuple(given)
        if prompts_taken or task.kind is JobKind.VARIATION or not task.init_images:
            return ()
        return (image_prompt_reference(task.init_images, task.request.image_weight),)

    def _control(self, model: LoadedModel, task: RenderTask, size: tuple[int, int]) -> Guide:
        control = task.request.control
        assert control is not None
        # A variation keeps its grid's control image: the job's image prompts come with it.
        prompts = task.prompt_images if task.kind is JobKind.VARIATION else task.init_images
        if not prompts:
            raise InvalidTask(
                "--control needs an image to follow: give an image prompt (a URL at the start "
                "of the prompt) or attach one"
            )
        kind = str(control.kind)
        scale = control_scale(control.scale)
        controls = self.controlnets
        hint = controls.control_map(kind, prompts[0], size, model.device)
        info = {"control": {"kind": kind, "scale": scale}}
        common = {"controlnet_conditioning_scale": scale}
        if task.kind is JobKind.VARIATION:
            return Guide(
                img2img=controls.pipeline(model, kind, img2img=True),
                img2img_kwargs={"control_image": hint, **common},
                info=info,
            )
        return Guide(
            txt2img=controls.pipeline(model, kind, img2img=False),
            txt2img_kwargs={"image": hint, **common},
            init_allowed=False,
            info=info,
        )

    def reference_guide(
        self, model: LoadedModel, references: Sequence[Reference], plan: SamplingPlan
    ) -> Guide:
        """Condition through the IP-Adapter on ``references``: image prompts instead of an
        img2img canvas, or style and character references beside it."""
        adapter = self.ip_adapter
        if adapter is None:
            raise ModelLoadError("image references need an IP-Adapter, which is not configured")
        adapter.use(model, references)
        unet_config = model.txt2img.unet.config
        guided = plan.guidance_scale > 1 and unet_config.get("time_cond_proj_dim") is None

        def per_batch(batch: int) -> dict[str, Any]:
            return {"ip_adapter_image_embeds": adapter.embeds(model, references, batch, guided)}

        shown = [{"role": r.role, "scale": round(r.scale, 4)} for r in references]
        return Guide(
            init_allowed=all(reference.role != "image" for reference in references),
            per_batch=per_batch,
            info={"reference": shown[0]} if len(shown) == 1 else {"references": shown},
        )
