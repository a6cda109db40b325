"""Prompt conditioning for SDXL: weighted multi-prompts through both text encoders with compel.

The sampling plan (``storage.sampling``) gives the segments with the style suffix applied and
weights that sum to 1. Each segment is encoded on its own through both encoders (penultimate
hidden states, as SDXL was trained; the second encoder also gives the pooled embedding); the
token embeddings (padded to a common length with empty-prompt chunks) and the pooled embeddings
are blended with the segment weights. A negative weight subtracts its concept. The negative
prompt (``--no``) is the negative conditioning of classifier-free guidance; without one it is
zeros, as SDXL pipelines do by default. A single plain segment gives exactly the embeddings
diffusers' own ``encode_prompt`` gives.

User text is passed to compel as literal fragments, never parsed as compel syntax, so ``+``,
``-`` and parentheses in a prompt mean nothing special. Prompts longer than 77 tokens are
encoded in 77-token chunks rather than cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from compel import Compel
from compel.prompt_parser import Conjunction, FlattenedPrompt, Fragment

from gpu_worker.models import LoadedModel


@dataclass(frozen=True)
class Conditioning:
    """Everything the SDXL UNet is conditioned on, for a batch of one."""

    prompt_embeds: torch.Tensor
    pooled_prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    negative_pooled_prompt_embeds: torch.Tensor

    def repeat(self, count: int) -> Conditioning:
        """The same conditioning for ``count`` images."""
        return Conditioning(
            *(t.repeat(count, *([1] * (t.ndim - 1))) for t in self._tensors()),
        )

    @staticmethod
    def cat(parts: Sequence[Conditioning]) -> Conditioning:
        """The conditionings of several batches, one after the other (a shared call)."""
        return Conditioning(
            *(torch.cat(tensors) for tensors in zip(*(p._tensors() for p in parts), strict=True))
        )

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return (
            self.prompt_embeds,
            self.pooled_prompt_embeds,
            self.negative_prompt_embeds,
            self.negative_pooled_prompt_embeds,
        )

    def pipeline_kwargs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments for an SDXL pipeline call."""
        return {
            "prompt_embeds": self.prompt_embeds,
            "pooled_prompt_embeds": self.pooled_prompt_embeds,
            "negative_prompt_embeds": self.negative_prompt_embeds,
            "negative_pooled_prompt_embeds": self.negative_pooled_prompt_embeds,
        }


def encode(
    model: LoadedModel,
    segments: Sequence[tuple[str, float]],
    negative_prompt: str | None,
) -> Conditioning:
    """Encode segments (weights summing to 1) and a negative prompt for ``model``."""
    if not segments:
        raise ValueError("a prompt needs at least one segment")
    first, second = model.encoders
    texts = [text for text, _ in segments]
    weights = [weight for _, weight in segments]
    with torch.no_grad():
        embeds_1 = _blend(first, [_hidden(first, t) for t in texts], weights)
        embeds_2 = _blend(second, [_hidden(second, t) for t in texts], weights)
        pooled = _blend(second, [_pooled(second, t) for t in texts], weights)
        if negative_prompt:
            neg_1, neg_2 = _hidden(first, negative_prompt), _hidden(second, negative_prompt)
            neg_pooled = _pooled(second, negative_prompt)
        elif model.txt2img.config.get("force_zeros_for_empty_prompt", True):
            neg_1, neg_2 = torch.zeros_like(embeds_1), torch.zeros_like(embeds_2)
            neg_pooled = torch.zeros_like(pooled)
        else:
            neg_1, neg_2 = _hidden(first, ""), _hidden(second, "")
            neg_pooled = _pooled(second, "")
        embeds_1, neg_1 = first.pad_conditioning_tensors_to_same_length([embeds_1, neg_1])
        embeds_2, neg_2 = second.pad_conditioning_tensors_to_same_length([embeds_2, neg_2])
        # Both encoders chunk the same text the same way; pad in case a tokenizer differs.
        embeds_1, embeds_2 = _same_length(first, second, embeds_1, embeds_2)
        neg_1, neg_2 = _same_length(first, second, neg_1, neg_2)
        device, dtype = model.device, model.dtype
        return Conditioning(
            prompt_embeds=torch.cat([embeds_1, embeds_2], dim=-1).to(device, dtype),
            pooled_prompt_embeds=pooled.to(device, dtype),
            negative_prompt_embeds=torch.cat([neg_1, neg_2], dim=-1).to(device, dtype),
            negative_pooled_prompt_embeds=neg_pooled.to(device, dtype),
        )


def _blend(compel: Compel, parts: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    if len(parts) == 1 and weights[0] == 1.0:
        return parts[0]
    if parts[0].ndim == 3:
        parts = compel.pad_conditioning_tensors_to_same_length(parts)
    blended = parts[0] * weights[0]
    for part, weight in zip(parts[1:], weights[1:], strict=True):
        blended = blended + part * weight
    return blended


def _same_length(
    first: Compel, second: Compel, a: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    while a.shape[1] < b.shape[1]:
        a = torch.cat([a, first.conditioning_provider.empty_z.to(a)], dim=1)
    while b.shape[1] < a.shape[1]:
        b = torch.cat([b, second.conditioning_provider.empty_z.to(b)], dim=1)
    return a, b


def _hidden(compel: Compel, text: str) -> torch.Tensor:
    conjunction = Conjunction([FlattenedPrompt([Fragment(text, 1.0)])])
    conditioning: torch.Tensor
    conditioning, _options = compel.build_conditioning_tensor_for_conjunction(conjunction)
    return conditioning


def _pooled(compel: Compel, text: str) -> torch.Tensor:
    pooled: torch.Tensor | None = compel.conditioning_provider.get_pooled_embeddings(
        [text], device=compel.device
    )
    assert pooled is not None
    return pooled


def nudge(
    source: Conditioning,
    targets: tuple[torch.Tensor, torch.Tensor],
    index: int,
    generator: torch.Generator,
    scale: float,
) -> None:
    """Add noise of ``scale`` times each embedding's spread to image ``index`` of ``targets``."""
    if scale <= 0:
        return
    for original, target in zip(
        (source.prompt_embeds, source.pooled_prompt_embeds), targets, strict=True
    ):
        noise = torch.randn(target.shape[1:], generator=generator, dtype=torch.float32)
        spread = original[index].float().std().item()
        target[index] = target[index] + (noise * scale * spread).to(target.device, target.dtype)
