"""Image references through an IP-Adapter: image prompts as content and style, not as a canvas.

With ``ip_adapter`` (an SDXL IP-Adapter weights file, ``.safetensors`` or ``.bin``: a local one
or one inside a hub or ModelScope repository, ``h94/IP-Adapter/sdxl_models/FILE``, fetched into
its cache) and ``ip_adapter_image_encoder`` (its CLIP vision encoder directory, likewise
``h94/IP-Adapter/sdxl_models/image_encoder``) configured, a job's image prompts condition the
UNet through the adapter instead of starting img2img from them:
- image prompts: adapter scale ``0.5 x --iw`` (0..1.5; the default ``--iw 1`` gives 0.5, even
  with the text);
- a style reference: the same embedding, but only in the layers that carry style
  (``up_blocks.0.attentions.1``, as InstantStyle found for SDXL), so the reference's look
  transfers without its layout; scale ``sw / 100 x 0.6`` (``--sw`` 0..1000, default 100);
- a character reference: every layer, scale ``cw / 100 x 0.8`` (``--cw`` 0..100, default 100).

The adapter is loaded once per UNet with ``load_ip_adapter``, which swaps the UNet's attention
processors and adds an image projection. Jobs without references get the UNet's original
processors back (and no projection), so they paint exactly as on a worker without an adapter.
Image embeddings are computed here (``CLIPImageProcessor`` at the encoder's size, the encoder's
``image_embeds``; zeros as the unconditional side, as diffusers does) and handed to the pipeline
as ``ip_adapter_image_embeds``, one row per image of the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from gpu_worker.errors import InvalidTask, ModelLoadError, short_reason
from gpu_worker.models import LoadedModel, _quiet
from gpu_worker.sources import resolve, resolve_path

STYLE_LAYERS = ("up_blocks.0.attentions.1",)
IMAGE_PROMPT_SCALE = 0.5
STYLE_SCALE = 0.6
CHARACTER_SCALE = 0.8
# A style and a character reference paint together, each in its own adapter slot.
MAX_REFERENCES = 2


@dataclass(frozen=True)
class Reference:
    """Images that condition a render through the IP-Adapter, in one role."""

    images: tuple[Image.Image, ...]
    scale: float
    role: str = "image"

    @property
    def style_only(self) -> bool:
        """Whether only the style layers see it."""
        return self.role == "style"


def image_prompt_reference(images: Sequence[Image.Image], image_weight: float) -> Reference:
    """Image prompts at ``--iw`` (0..3) as an IP-Adapter reference."""
    if not 0 <= image_weight <= 3:
        raise InvalidTask(f"image weight must be between 0 and 3, got {image_weight:g}")
    return Reference(tuple(images), IMAGE_PROMPT_SCALE * image_weight)


def style_reference(images: Sequence[Image.Image], style_weight: int = 100) -> Reference:
    """``--sref`` images at ``--sw`` (0..1000): style layers only."""
    if not 0 <= style_weight <= 1000:
        raise InvalidTask(f"--sw must be between 0 and 1000, got {style_weight}")
    return Reference(tuple(images), STYLE_SCALE * style_weight / 100, role="style")


def character_reference(images: Sequence[Image.Image], character_weight: int = 100) -> Reference:
    """``--cref`` images at ``--cw`` (0..100): every layer."""
    if not 0 <= character_weight <= 100:
        raise InvalidTask(f"--cw must be between 0 and 100, got {character_weight}")
    return Reference(tuple(images), CHARACTER_SCALE * character_weight / 100, role="character")


class IpAdapter:
    """One configured IP-Adapter: loaded into each UNet that needs it, switched per job."""

    def __init__(self, weights: str, encoder: str) -> None:
        self.weights = Path(weights).expanduser()
        self.encoder_source = encoder
        self._encoder: Any = None
        self._processor: Any = None
        # Per UNet (by id): (its original processors, the adapter's processors, projection).
        self._states: dict[int, tuple[dict[str, Any], dict[str, Any], Any]] = {}
        # Per UNet: the two-slot processors and projection built from its state (``_pair``).
        self._pairs: dict[int, tuple[dict[str, Any], Any]] = {}
        self._lock = threading.Lock()

    def use(self, model: LoadedModel, references: Sequence[Reference]) -> None:
        """Put the adapter in (at the references' scales) or, with none, take it out of
        ``model``'s UNet. Two references (a style and a character one) take one slot each."""
        unet = model.txt2img.unet
        if not references:
            state = self._states.get(id(unet))
            if state is not None:
                unet.set_attn_processor(dict(state[0]))
                unet.encoder_hid_proj = None
                unet.config.encoder_hid_dim_type = None
            return
        if len(references) > MAX_REFERENCES:
            raise InvalidTask(f"at most {MAX_REFERENCES} image references paint together")
        adapter, projection = self._attach(model)[1:] if len(references) == 1 else self._pair(model)
        unet.set_attn_processor(dict(adapter))
        unet.encoder_hid_proj = projection
        unet.config.encoder_hid_dim_type = "ip_image_proj"
        for name, processor in unet.attn_processors.items():
            if hasattr(processor, "to_k_ip"):
                in_style = any(layer in name for layer in STYLE_LAYERS)
                processor.scale = [
                    ref.scale if in_style or not ref.style_only else 0.0 for ref in references
                ]

    def embeds(
        self, model: LoadedModel, references: Sequence[Reference], batch: int, guided: bool
    ) -> list[torch.Tensor]:
        """``ip_adapter_image_embeds`` for ``batch`` images, one tensor per reference
        (unconditional rows first when ``guided``)."""
        self._attach(model)
        embeds = []
        for reference in references:
            pixels = self._processor(images=list(reference.images), return_tensors="pt")
            with torch.no_grad():
                encoded = self._encoder(
                    pixels.pixel_values.to(model.device, self._encoder.dtype)
                ).image_embeds
            rows = encoded[None].repeat(batch, 1, 1).to(model.dtype)
            embeds.append(torch.cat([torch.zeros_like(rows), rows]) if guided else rows)
        return embeds

    def _pair(self, model: LoadedModel) -> tuple[dict[str, Any], Any]:
        """Two-slot processors and projection for ``model``'s UNet, sharing the one-slot
        state's weights (the same adapter twice, so no second copy in memory)."""
        _, single, projection = self._attach(model)
        unet = model.txt2img.unet
        with self._lock:
            if id(unet) not in self._pairs:
                self._pairs[id(unet)] = _two_slots(single, projection)
            return self._pairs[id(unet)]

    def _attach(self, model: LoadedModel) -> tuple[dict[str, Any], dict[str, Any], Any]:
        pipe = model.txt2img
        unet = pipe.unet
        with self._lock:
            if self._encoder is None:
                self._load_encoder(model)
            if id(unet) not in self._states:
                original = dict(unet.attn_processors)
                weights = resolve_path(self.weights)
                if not weights.is_file():
                    raise ModelLoadError(
                        f"cannot load IP-Adapter {self.weights}: {weights} is not a weights file"
                    )
                try:
                    with _quiet():
                        pipe.load_ip_adapter(
                            str(weights.parent),
                            subfolder="",
                            weight_name=weights.name,
                            image_encoder_folder=None,
                        )
                except (OSError, ValueError, RuntimeError, KeyError) as exc:
                    reason = short_reason(exc)
                    raise ModelLoadError(
                        f"cannot load IP-Adapter {self.weights}: {reason}"
                    ) from exc
                self._states[id(unet)] = (
                    original,
                    dict(unet.attn_processors),
                    unet.encoder_hid_proj,
                )
            return self._states[id(unet)]

    def _load_encoder(self, model: LoadedModel) -> None:
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        try:
            encoder: Any = CLIPVisionModelWithProjection.from_pretrained(
                resolve(self.encoder_source), dtype=model.dtype
            )
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            reason = short_reason(exc)
            raise ModelLoadError(
                f"cannot load the IP-Adapter image encoder {self.encoder_source!r}: {reason}"
            ) from exc
        size = int(encoder.config.image_size)
        # The published encoders ship without a preprocessor file: CLIP's defaults at its size.
        self._processor = CLIPImageProcessor(size=size, crop_size=size)
        self._encoder = encoder.to(model.device).eval()


def _two_slots(processors: dict[str, Any], projection: Any) -> tuple[dict[str, Any], Any]:
    """The adapter's processors and projection with a second slot that shares the first's
    weights: each slot takes its own images and scale."""
    from diffusers.models.embeddings import MultiIPAdapterImageProjection

    paired: dict[str, Any] = {}
    for name, processor in processors.items():
        if not hasattr(processor, "to_k_ip"):
            paired[name] = processor
            continue
        # Built on the meta device: its own projections are replaced by the shared ones.
        with torch.device("meta"):
            twin = type(processor)(
                hidden_size=processor.hidden_size,
                cross_attention_dim=processor.cross_attention_dim,
                num_tokens=[*processor.num_tokens] * 2,
                scale=[0.0, 0.0],
            )
        twin.to_k_ip = torch.nn.ModuleList([processor.to_k_ip[0]] * 2)
        twin.to_v_ip = torch.nn.ModuleList([processor.to_v_ip[0]] * 2)
        paired[name] = twin
    layer = projection.image_projection_layers[0]
    return paired, MultiIPAdapterImageProjection([layer, layer])
