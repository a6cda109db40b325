"""The SDXL base architecture at its published sizes, with random weights, for measurements.

``SDXL_BASE`` holds the configs of stabilityai/stable-diffusion-xl-base-1.0: the UNet (2.57 B
parameters; three levels of 320/640/1280 channels with 1, 2 and 10 transformer layers, 2048-wide
cross-attention, ``text_time`` added embeddings), the four-channel VAE (83.7 M), CLIP ViT-L's text
encoder (768 wide, 12 layers, 123 M) and OpenCLIP ViT-bigG's (1280 wide, 32 layers, projection
1280, 695 M), and byte-level BPE tokenizers with CLIP's vocabulary size (49408, the start and end
tokens last, as in CLIP). Random weights cost exactly what trained ones cost, so speed and memory
measured on this model are those of SDXL; its images are noise.

``write_sdxl`` builds one component at a time directly in half precision (the layers' own
initialisers run in fp16; there is never an fp32 copy), saves it as sharded safetensors (2 GB
shards) and frees it before the next one, so writing the full-size model needs about the UNet's
fp16 size in memory (5.4 GB peak RSS measured, 80 s on two CPU cores) instead of the whole
pipeline in fp32 (~14 GB). ``model_index.json`` comes from
a pipeline assembled on the ``meta`` device, so the directory loads with ``from_pretrained``
exactly like the real checkpoint.
"""

from __future__ import annotations

import contextlib
import gc
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import diffusers
import torch
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

from gpu_worker.tiny import BOS, EOS, _byte_chars

# diffusers builds its classes dynamically; type checkers only see import shims.
_diffusers: Any = diffusers
# transformers' private constructor that takes a dtype is untyped.
_clip_text: Any = CLIPTextModel
_clip_text_projected: Any = CLIPTextModelWithProjection
COMPONENTS = ("text_encoder", "text_encoder_2", "vae", "unet")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"

_UNET: dict[str, Any] = {
    "sample_size": 128,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [320, 640, 1280],
    "layers_per_block": 2,
    # diffusers' historical name: these are head counts (64 channels per head).
    "attention_head_dim": [5, 10, 20],
    "transformer_layers_per_block": [1, 2, 10],
    "cross_attention_dim": 2048,
    "use_linear_projection": True,
    "norm_num_groups": 32,
    "act_fn": "silu",
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    # Six size/crop ids of 256 each, next to bigG's 1280-wide pooled embedding.
    "projection_class_embeddings_input_dim": 2816,
}
_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "act_fn": "silu",
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    # SDXL's VAE overflows in float16; its config says so, and the worker reads it.
    "force_upcast": True,
}
_CLIP_L: dict[str, Any] = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
}
_CLIP_BIG_G: dict[str, Any] = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "projection_dim": 1280,
    "hidden_act": "gelu",
}
_SCHEDULER: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "prediction_type": "epsilon",
}


@dataclass(frozen=True)
class SdxlSpec:
    """The configs of an SDXL pipeline's components (keyword arguments of their config classes)."""

    unet: Mapping[str, Any]
    vae: Mapping[str, Any]
    text_encoder: Mapping[str, Any]
    text_encoder_2: Mapping[str, Any]
    vocab_size: int = 49408
    max_tokens: int = 77
    scheduler: Mapping[str, Any] = field(default_factory=lambda: dict(_SCHEDULER))

    def check(self) -> None:
        """Raise ``ValueError`` when the components would not fit together."""
        width = self.text_encoder["hidden_size"] + self.text_encoder_2["hidden_size"]
        if self.unet["cross_attention_dim"] != width:
            raise ValueError(
                f"unet cross_attention_dim is {self.unet['cross_attention_dim']} but the two text "
                f"encoders are {width} wide together"
            )
        added = 6 * self.unet["addition_time_embed_dim"] + self.text_encoder_2["projection_dim"]
        if self.unet["projection_class_embeddings_input_dim"] != added:
            raise ValueError(
                "unet projection_class_embeddings_input_dim is "
                f"{self.unet['projection_class_embeddings_input_dim']}; six time ids of "
                f"{self.unet['addition_time_embed_dim']} and a pooled embedding of "
                f"{self.text_encoder_2['projection_dim']} make {added}"
            )
        if self.vocab_size < 2 * 256 + 2:
            raise ValueError(
                f"vocab_size must be at least 514 (bytes and specials), got {self.vocab_size}"
            )


SDXL_BASE = SdxlSpec(unet=_UNET, vae=_VAE, text_encoder=_CLIP_L, text_encoder_2=_CLIP_BIG_G)


def clip_vocabulary(size: int) -> tuple[dict[str, int], list[str]]:
    """A byte-level BPE vocabulary of exactly ``size`` tokens and its merges, laid out like CLIP's.

    The 256 byte characters, the same with ``</w>``, then one token per merge (letter pairs,
    then triples, ...; each merge joins two tokens that exist before it), then the start and
    end tokens, which get the last two ids (49406 and 49407 at CLIP's size).
    """
    chars = _byte_chars()
    # CLIP lists the printable byte characters first ("!" is id 0), then the remapped ones.
    printable = [chars[b] for b in range(256) if chars[b] == chr(b)]
    base = printable + [chars[b] for b in range(256) if chars[b] != chr(b)]
    tokens = [*base, *(f"{char}</w>" for char in base)]
    wanted = size - len(tokens) - 2
    merges: list[str] = []
    stems = list(_LETTERS)
    while len(merges) < wanted:
        longer = []
        for stem, letter in product(stems, _LETTERS):
            for end in ("", "</w>"):
                merges.append(f"{stem} {letter}{end}")
                if len(merges) == wanted:
                    break
            if len(merges) == wanted:
                break
            longer.append(stem + letter)
        stems = longer
    tokens += [merge.replace(" ", "") for merge in merges]
    tokens += [BOS, EOS]
    return {token: i for i, token in enumerate(tokens)}, merges


def write_tokenizer(directory: Path, spec: SdxlSpec, pad_token: str) -> CLIPTokenizer:
    """Write a CLIP tokenizer of the spec's vocabulary size into ``directory``; returns it."""
    vocab, merges = clip_vocabulary(spec.vocab_size)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (work / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        tokenizer: CLIPTokenizer = CLIPTokenizer.from_pretrained(
            work, pad_token=pad_token, model_max_length=spec.max_tokens
        )
    tokenizer.save_pretrained(directory)
    # The plain BPE files beside tokenizer.json, as the real checkpoint has them.
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return tokenizer


def _text_config(spec: SdxlSpec, name: str) -> CLIPTextConfig:
    vocab, _ = clip_vocabulary(spec.vocab_size)
    return CLIPTextConfig(
        vocab_size=spec.vocab_size,
        max_position_embeddings=spec.max_tokens,
        bos_token_id=vocab[BOS],
        eos_token_id=vocab[EOS],
        # The first tokenizer pads with the end token, the second with "!" (as SDXL's do).
        pad_token_id=vocab[EOS] if name == "text_encoder" else vocab["!"],
        **dict(spec.text_encoder if name == "text_encoder" else spec.text_encoder_2),
    )


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_component(spec: SdxlSpec, name: str, dtype: torch.dtype = torch.float16) -> Any:
    """One component with freshly initialised weights, built in ``dtype`` on the current device.

    Under ``with torch.device("meta")`` nothing is allocated (for counting parameters).
    """
    builders: dict[str, Callable[[], Any]] = {
        "unet": lambda: _diffusers.UNet2DConditionModel.from_config(dict(spec.unet)),
        "vae": lambda: _diffusers.AutoencoderKL.from_config(dict(spec.vae)),
        "text_encoder": lambda: _clip_text._from_config(_text_config(spec, name), dtype=dtype),
        "text_encoder_2": lambda: _clip_text_projected._from_config(
            _text_config(spec, name), dtype=dtype
        ),
    }
    if name not in builders:
        raise ValueError(f"unknown component {name!r}; SDXL has {', '.join(COMPONENTS)}")
    with _default_dtype(dtype), torch.no_grad():
        return builders[name]().eval()


def parameter_counts(spec: SdxlSpec = SDXL_BASE) -> dict[str, int]:
    """Parameters per component, counted on the ``meta`` device (nothing is allocated)."""
    with torch.device("meta"):
        return {
            name: sum(p.numel() for p in build_component(spec, name).parameters())
            for name in COMPONENTS
        }


def write_sdxl(
    directory: Path,
    spec: SdxlSpec = SDXL_BASE,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float16,
    max_shard_size: str = "2GB",
    device: str | torch.device = "cpu",
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write a random-weight SDXL pipeline of ``spec`` into ``directory`` (created).

    ``device`` is where the weights are initialised: a GPU does it in moments, then each tensor
    is copied to the host as it is written. A seed gives the same weights on the same kind of
    device only (CPU and CUDA draw different random numbers).
    """
    spec.check()
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = write_tokenizer(directory / "tokenizer", spec, EOS)
    tokenizer_2 = write_tokenizer(directory / "tokenizer_2", spec, "!")
    scheduler = _diffusers.EulerDiscreteScheduler(**spec.scheduler)
    scheduler.save_pretrained(directory / "scheduler")
    for index, name in enumerate(COMPONENTS):
        # Each component's weights depend on the seed and its name only, not on build order.
        torch.manual_seed(seed * len(COMPONENTS) + index)
        with torch.device(device):
            module = build_component(spec, name, dtype)
        if progress is not None:
            count = sum(p.numel() for p in module.parameters())
            progress(f"writing {name} ({count / 1e6:,.1f} M parameters)")
        module.save_pretrained(
            directory / name, safe_serialization=True, max_shard_size=max_shard_size
        )
        del module
        gc.collect()
    with torch.device("meta"):
        parts = {name: build_component(spec, name, dtype) for name in COMPONENTS}
    pipeline = _diffusers.StableDiffusionXLPipeline(
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=scheduler,
        add_watermarker=False,
        **parts,
    )
    # Written last: a directory with model_index.json is complete.
    pipeline.save_config(directory)
    return directory
