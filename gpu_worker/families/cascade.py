"""Stable Cascade (Wuerstchen v3): a text-conditioned prior, then a decoder that paints.

Loading: the components are read one by one with ``from_pretrained`` from their sub-folders,
of a ``StableCascadeCombinedPipeline`` layout (what ``save_pretrained`` of the combined pipeline
writes), or of two: a ``StableCascadeDecoderPipeline`` and a ``StableCascadePriorPipeline``
(how ``stabilityai/stable-cascade`` and ``stabilityai/stable-cascade-prior`` are published);
the prior pipeline
(``StableCascadePriorPipeline``) and the decoder pipeline (``StableCascadeDecoderPipeline``) are
built over them. On CUDA the prior runs in bf16 and the decoder in fp16; on CPU both in fp32.

Rendering: a grid is one prior call and one decoder call, each with one ``torch.Generator`` per
image seeded ``seed + i`` (the prior's starting noise and the decoder's are drawn per image from
that generator), so image i of a grid equals a one-image render at ``seed + i``.

Sizes: Cascade's prior works at 1/42.67 of the image side and its decoder at 1/4; sides are
multiples of 128 so both are whole (1024x1024: a 24x24 prior latent). A request's SDXL size is
scaled to the model's native side (1024 for a published checkpoint) and rounded to a multiple
of 128. Steps: ``--steps``/``--q`` are the prior's steps; the decoder always runs
``DECODER_STEPS`` (10, what Stable Cascade recommends) with guidance 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers
from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import PaellaVQModel
from PIL import Image

from gpu_worker.errors import JobCancelled, ModelLoadError, short_reason

_diffusers: Any = diffusers
_transformers: Any = transformers
_CPU = torch.device("cpu")
COMBINED = "StableCascadeCombinedPipeline"
DECODER_STEPS = 10
SIDE_MULTIPLE = 128
DECODER = "StableCascadeDecoderPipeline"
PRIOR = "StableCascadePriorPipeline"
_PRIOR_PARTS = ("prior", "text_encoder", "tokenizer", "scheduler")
_DECODER_PARTS = ("decoder", "text_encoder", "tokenizer", "scheduler", "vqgan")
_OPTIONAL = ("image_encoder", "feature_extractor")


def is_cascade(directory: Path) -> bool:
    """Whether ``directory`` holds a Stable Cascade model (its model_index.json says so)."""
    index = directory / "model_index.json"
    if not index.is_file():
        return False
    return json.loads(index.read_text()).get("_class_name") in (COMBINED, DECODER)


def needs_prior(directory: Path) -> bool:
    """Whether ``directory`` holds only the decoder (as ``stabilityai/stable-cascade`` is
    published), so its prior is another model (``gpu_worker.families.cascade_jobs``)."""
    return bool(_index(directory).get("_class_name") == DECODER)


def _index(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "model_index.json").read_text())
    return loaded


@dataclass
class CascadeModel:
    """A loaded Stable Cascade: the prior and decoder pipelines over one set of components."""

    name: str
    source: str
    prior: Any
    decoder: Any
    device: torch.device
    native: int

    @property
    def can_vary(self) -> bool:
        """Whether the prior has an image encoder (needed for V1-V4 image variations)."""
        return self.prior.image_encoder is not None

    def size(self, width: int, height: int) -> tuple[int, int]:
        """A request's SDXL size at this model's native side, in multiples of 128."""
        scale = self.native / 1024

        def snap(side: int) -> int:
            return max(SIDE_MULTIPLE, int(side * scale / SIDE_MULTIPLE + 0.5) * SIDE_MULTIPLE)

        return snap(width), snap(height)


def load(
    name: str,
    source: str,
    directory: Path,
    device: torch.device,
    cuda: bool,
    prior_directory: Path | None = None,
) -> CascadeModel:
    """Load a Stable Cascade: from ``directory`` alone in the combined-pipeline layout, or the
    decoder from ``directory`` and the prior from ``prior_directory`` (two pipelines' layouts)."""
    prior_dtype = torch.bfloat16 if cuda else torch.float32
    decoder_dtype = torch.float16 if cuda else torch.float32
    index = _index(directory)
    if index.get("_class_name") == COMBINED:
        prior_at, prior_index, prefix = directory, index, "prior_"
    elif prior_directory is not None:
        prior_at, prior_index, prefix = prior_directory, _index(prior_directory), ""
    else:
        raise ModelLoadError(f"cannot load model {source!r}: its Stable Cascade prior is missing")
    try:
        prior = _parts(source, prior_index, prior_at, prefix, _PRIOR_PARTS, _OPTIONAL, prior_dtype)
        decoder = _parts(source, index, directory, "", _DECODER_PARTS, (), decoder_dtype)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        reason = short_reason(exc)
        raise ModelLoadError(f"cannot load model {source!r} (Stable Cascade): {reason}") from exc
    pipes = (
        _diffusers.StableCascadePriorPipeline(**prior),
        _diffusers.StableCascadeDecoderPipeline(**decoder),
    )
    for pipe in pipes:
        pipe.set_progress_bar_config(disable=True)
        pipe.to(device)
    return CascadeModel(name, source, *pipes, device, _native(prior_at / f"{prefix}prior"))


def _parts(
    source: str,
    index: dict[str, Any],
    directory: Path,
    prefix: str,
    names: Sequence[str],
    optional: Sequence[str],
    dtype: torch.dtype,
) -> dict[str, Any]:
    """One pipeline's components by name (``optional`` ones may be missing: None), read from
    ``directory/PREFIX+NAME``."""
    parts: dict[str, Any] = {}
    for part in (*names, *optional):
        entry = index.get(prefix + part)
        if entry is None or entry[1] is None:
            if part in optional:
                parts[part] = None
                continue
            raise ModelLoadError(
                f"cannot load model {source!r}: Stable Cascade needs {prefix + part}, and "
                f"{directory / 'model_index.json'} has none"
            )
        parts[part] = _component(entry, directory / (prefix + part), dtype)
    return parts


def _native(prior: Path) -> int:
    """The native side: 42.67 px per prior latent cell, 24 cells (1024 px) unless the prior's
    config.json says otherwise with ``sample_size`` (the tiny model: 3 cells, 128 px)."""
    config = json.loads((prior / "config.json").read_text())
    cells = config.get("sample_size") or 24
    return round(int(cells) * SIDE_MULTIPLE / 3)


def _component(entry: Sequence[str], folder: Path, dtype: torch.dtype) -> Any:
    library, class_name = entry[0], entry[1]
    if class_name == "PaellaVQModel":
        # Saved as ["diffusers", "PaellaVQModel"], a class diffusers no longer exports.
        return PaellaVQModel.from_pretrained(folder, dtype=dtype)
    module = _diffusers if library == "diffusers" else _transformers
    cls = getattr(module, class_name)
    if "Tokenizer" in class_name or "Processor" in class_name or "Scheduler" in class_name:
        return cls.from_pretrained(folder)
    return (
        cls.from_pretrained(folder, dtype=dtype)
        if library == "diffusers"
        else (cls.from_pretrained(folder, torch_dtype=dtype))
    )


StepHook = Callable[[int, torch.Tensor], None]


@dataclass(frozen=True)
class Text:
    """Prompt conditioning of both stages: the prior's token and pooled embeddings (and their
    negatives), and the decoder's pooled embedding."""

    prior: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
    decoder_pooled: torch.Tensor


def encode(
    model: CascadeModel, segments: Sequence[tuple[str, float]], negative_prompt: str | None
) -> Text:
    """Weighted segments (weights summing to 1) blended in embedding space, as SDXL blends
    them: each segment encoded on its own, token and pooled embeddings summed with its weight.
    One plain segment gives exactly the pipelines' own embeddings."""
    if not segments:
        raise ValueError("a prompt needs at least one segment")

    def blended(pipe: Any) -> list[torch.Tensor]:
        parts = [
            pipe.encode_prompt(
                device=model.device,
                batch_size=1,
                num_images_per_prompt=1,
                do_classifier_free_guidance=True,
                prompt=text,
                negative_prompt=negative_prompt or None,
            )
            for text, _ in segments
        ]
        embeds, pooled = (
            sum((part[k] * weight for part, (_, weight) in zip(parts, segments, strict=True)))
            if len(parts) > 1 or segments[0][1] != 1.0
            else parts[0][k]
            for k in (0, 1)
        )
        return [embeds, pooled, parts[0][2], parts[0][3]]

    with torch.no_grad():
        prior = blended(model.prior)
        decoder = blended(model.decoder)
    return Text((prior[0], prior[1], prior[2], prior[3]), decoder[1])


def render(
    model: CascadeModel,
    *,
    text: Text,
    width: int,
    height: int,
    seed: int,
    indices: Sequence[int],
    steps: int,
    guidance: float,
    images: Sequence[Image.Image] = (),
    stop_after: int | None = None,
    on_step: StepHook | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> list[Image.Image]:
    """Grid images ``indices``: one prior call, one decoder call, one generator per image.

    ``stop_after`` ends the prior after that many of its ``steps`` (``--stop``) and the decoder
    paints from its latents as they are. ``on_step(n, latents)`` follows both stages (the prior's
    steps, then ``DECODER_STEPS``) with the prior's latents, the ones a preview can show.
    """
    shown: list[torch.Tensor] = []
    prior_steps = min(steps, stop_after or steps)

    def hook(stage: int) -> Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]:
        def step_end(
            pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]
        ) -> dict[str, Any]:
            if cancelled is not None and cancelled():
                raise JobCancelled("cancelled by request")
            if stage == 0:
                shown[:] = [tensors["latents"]]
            if on_step is not None:
                on_step(stage * prior_steps + step + 1, shown[0])
            if stage == 0 and step + 1 == prior_steps < steps:
                # The prior pipeline has no interrupt: leave its loop with the latents so far.
                raise _Stopped(tensors["latents"])
            return {}

        return step_end

    def generators() -> list[torch.Generator]:
        return [torch.Generator(device=_CPU).manual_seed(seed + i) for i in indices]

    count = len(indices)
    embeds, pooled, negative, negative_pooled = text.prior
    prior_kwargs: dict[str, Any] = {}
    if guidance > 1:
        # Only classifier-free guidance reads the negatives (the pipeline would batch them in).
        prior_kwargs["negative_prompt_embeds"] = negative
        prior_kwargs["negative_prompt_embeds_pooled"] = negative_pooled
    if images:
        prior_kwargs["images"] = list(images)
    try:
        priors = model.prior(
            prompt_embeds=embeds,
            prompt_embeds_pooled=pooled,
            width=width,
            height=height,
            num_inference_steps=steps,
            guidance_scale=guidance,
            num_images_per_prompt=count,
            generator=generators(),
            callback_on_step_end=hook(0),
            **prior_kwargs,
        )
        latents = priors.image_embeddings
    except _Stopped as stopped:
        latents = stopped.latents
    embeddings = latents.to(model.decoder.dtype)
    dtype = model.decoder.dtype
    result = model.decoder(
        image_embeddings=embeddings,
        # Guidance 0: the decoder takes only the pooled text, one per image.
        prompt_embeds=embeds.to(dtype).repeat(count, 1, 1),
        prompt_embeds_pooled=text.decoder_pooled.to(dtype).repeat(count, 1, 1),
        num_inference_steps=DECODER_STEPS,
        guidance_scale=0.0,
        generator=generators(),
        callback_on_step_end=hook(1),
        output_type="pil",
    )
    return list(result.images)


class _Stopped(Exception):
    """Raised from the prior's step callback at ``--stop``, carrying its latents."""

    def __init__(self, latents: torch.Tensor) -> None:
        super().__init__("stopped early")
        self.latents = latents
