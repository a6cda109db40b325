"""LoRA adapters: each file is loaded once per model and switched on or off per job.

A LoRA (a style, or a profile's distillation LoRA such as LCM-LoRA) is loaded the first time a
job needs it, with ``load_lora_weights(path, adapter_name=...)``, into the UNet that job paints
with and the model's two text encoders. A profile with a distilled UNet shares the base model's
text encoders, so there the LoRA's UNet part is loaded into that UNet alone
(``load_lora_into_unet``) and its text-encoder part is the one already loaded. Adapters are never
fused into the weights: before each job exactly its adapters are made active with their weights
(``set_adapters``), and a job without any switches them off (``disable_lora``), which runs the
original layers untouched, so its images are bit-identical to those of a worker that never
loaded a LoRA.

A style's trigger words are put in front of every positive prompt segment of a job that uses it
(``trigger, text``), since that is how such LoRAs were trained to be called.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffusers.loaders.lora_base import (
    disable_lora_for_text_encoder,
    enable_lora_for_text_encoder,
    set_adapters_for_text_encoder,
)

from gpu_worker.errors import InvalidTask, ModelLoadError, short_reason
from gpu_worker.extras import LoraStyle
from gpu_worker.models import _quiet
from gpu_worker.sources import resolve

MAX_LORAS = 4


@dataclass(frozen=True)
class Adapter:
    """One LoRA to use for a job: its adapter name, file and weight."""

    key: str
    path: Path
    weight: float


def style_adapters(
    wanted: Sequence[tuple[str, float]], styles: Mapping[str, LoraStyle]
) -> list[Adapter]:
    """The adapters for a request's ``loras``; unknown names are refused with the list."""
    if len(wanted) > MAX_LORAS:
        raise InvalidTask(f"at most {MAX_LORAS} LoRA styles per prompt, got {len(wanted)}")
    adapters = []
    for name, weight in wanted:
        style = styles.get(name)
        if style is None:
            offered = ", ".join(sorted(styles)) or "none"
            raise InvalidTask(
                f"LoRA style {name!r} is not available on this worker; available: {offered}"
            )
        if not 0 <= weight <= 2:
            raise InvalidTask(f"LoRA weight must be between 0 and 2, got {weight:g} for {name}")
        adapters.append(Adapter(f"style-{name}", style.path, float(weight)))
    return adapters


def with_triggers(
    segments: Sequence[tuple[str, float]], triggers: Sequence[str]
) -> tuple[tuple[str, float], ...]:
    """Segments with the styles' trigger words in front of each positive one."""
    words = ", ".join(t for t in triggers if t)
    if not words:
        return tuple(segments)
    return tuple((f"{words}, {text}" if weight > 0 else text, weight) for text, weight in segments)


def adapters_of(module: Any) -> set[str]:
    """Names of the LoRA adapters loaded into a UNet or text encoder."""
    config = getattr(module, "peft_config", None)
    return set(config) if config else set()


class Adapters:
    """The LoRA adapters of one base model (its text encoders and every UNet painting with them)."""

    def __init__(self, base_pipe: Any) -> None:
        self._base = base_pipe
        self.loads = 0

    @property
    def text_encoders(self) -> tuple[Any, Any]:
        """The two text encoders all of the model's pipelines share."""
        return self._base.text_encoder, self._base.text_encoder_2

    def use(self, pipe: Any, adapters: Sequence[Adapter]) -> None:
        """Make exactly ``adapters`` active for ``pipe`` (its UNet and the text encoders)."""
        for adapter in adapters:
            self._load(pipe, adapter)
        names = [a.key for a in adapters]
        weights = [a.weight for a in adapters]
        _switch_unet(pipe.unet, names, weights)
        for encoder in self.text_encoders:
            _switch_text_encoder(encoder, names, weights)

    def _load(self, pipe: Any, adapter: Adapter) -> None:
        if adapter.key in adapters_of(pipe.unet):
            return
        try:
            with _quiet(), warnings.catch_warnings():
                # peft warns whenever a second adapter joins a model; several is the point here.
                warnings.filterwarnings("ignore", "Already found a `peft_config`", UserWarning)
                self._load_into(pipe, adapter)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            reason = short_reason(exc)
            raise ModelLoadError(f"cannot load LoRA {adapter.path}: {reason}") from exc
        self.loads += 1

    def _load_into(self, pipe: Any, adapter: Adapter) -> None:
        path = resolve(adapter.path)
        if any(adapter.key in adapters_of(e) for e in self.text_encoders):
            # The text encoders already have this LoRA (through another UNet of the model).
            state, alphas = pipe.lora_state_dict(path, unet_config=pipe.unet.config)
            pipe.load_lora_into_unet(
                state,
                network_alphas=alphas,
                unet=pipe.unet,
                adapter_name=adapter.key,
                _pipeline=pipe,
            )
        else:
            pipe.load_lora_weights(path, adapter_name=adapter.key)


def _switch_unet(unet: Any, names: list[str], weights: list[float]) -> None:
    present = adapters_of(unet)
    chosen = [(n, w) for n, w in zip(names, weights, strict=True) if n in present]
    if chosen:
        # set_adapters picks the active set but does not undo an earlier disable_lora.
        unet.enable_lora()
        unet.set_adapters([n for n, _ in chosen], [w for _, w in chosen])
    elif present:
        unet.disable_lora()


def _switch_text_encoder(encoder: Any, names: list[str], weights: list[float]) -> None:
    present = adapters_of(encoder)
    chosen = [(n, w) for n, w in zip(names, weights, strict=True) if n in present]
    if chosen:
        enable_lora_for_text_encoder(encoder)
        set_adapters_for_text_encoder([n for n, _ in chosen], encoder, [w for _, w in chosen])
    elif present:
        disable_lora_for_text_encoder(encoder)
