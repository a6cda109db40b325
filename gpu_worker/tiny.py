"""A tiny random-weight SDXL, built from configs, for smoke tests and CPU development.

It has every component a real SDXL checkpoint has (UNet with text-time conditioning, a VAE with
four block levels so the latent scale factor is the real 8, ``CLIPTextModel`` and
``CLIPTextModelWithProjection``, two byte-level BPE tokenizers, an Euler scheduler config) and is
written with ``save_pretrained``, so the engine loads it through the same ``from_pretrained`` path
as a real model. Its native resolution is 64x64 (UNet sample size 8 x VAE factor 8); a 4-image,
2-step grid takes a fraction of a second on one CPU core. The images are noise-like patterns:
the weights are random.
"""

from __future__ import annotations

import json
import tempfile
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

TEXT_HIDDEN = 32
PROJECTION_DIM = 32
TIME_EMBED_DIM = 8
MAX_TOKENS = 77
# diffusers builds its classes dynamically; type checkers only see import shims.
_diffusers: Any = diffusers
BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
# Merges learnt from nothing: a handful of frequent English pairs, so the tokenizer really merges.
_MERGES = ("t h", "th e</w>", "e r", "i n", "a n", "o n", "r e", "e d</w>", "in g</w>")


def _byte_chars() -> list[str]:
    """The 256 printable characters byte-level BPE uses for raw bytes (GPT-2's table)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_tokenizer_files(directory: Path) -> None:
    """Write a byte-level CLIP ``vocab.json`` and ``merges.txt`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tokens = [BOS, EOS]
    for char in _byte_chars():
        tokens += [char, f"{char}</w>"]
    for merge in _MERGES:
        merged = merge.replace(" ", "")
        if merged not in tokens:
            tokens.append(merged)
    vocab = {token: i for i, token in enumerate(tokens)}
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_MERGES) + "\n")


def _tokenizer(work: Path, name: str, pad_token: str) -> CLIPTokenizer:
    path = work / name
    write_tokenizer_files(path)
    tokenizer: CLIPTokenizer = CLIPTokenizer.from_pretrained(
        path, pad_token=pad_token, model_max_length=MAX_TOKENS
    )
    return tokenizer


def _text_config(tokenizer: CLIPTokenizer, projection_dim: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_TOKENS,
        projection_dim=projection_dim,
        hidden_act="gelu",
        # The pooled output is read at the end token; it must be the tokenizer's.
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_tiny_pipeline(seed: int = 0) -> Any:
    """A tiny SDXL pipeline with random weights drawn from ``seed`` (fp32, CPU)."""
    torch.manual_seed(seed)
    unet = _diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        attention_head_dim=(2, 4),
        norm_num_groups=32,
        cross_attention_dim=2 * TEXT_HIDDEN,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        # Six size/crop ids, each embedded to TIME_EMBED_DIM, next to the pooled text embedding.
        projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + PROJECTION_DIM,
        transformer_layers_per_block=1,
    )
    vae = _diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        scaling_factor=0.13025,
        force_upcast=True,
    )
    scheduler = _diffusers.EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type="epsilon",
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tokenizer = _tokenizer(work, "tokenizer", EOS)
        tokenizer_2 = _tokenizer(work, "tokenizer_2", "!")
    text_encoder = CLIPTextModel(_text_config(tokenizer, PROJECTION_DIM))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(tokenizer_2, PROJECTION_DIM))
    return _diffusers.StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )


def write_tiny_model(directory: Path, seed: int = 0) -> Path:
    """Build the tiny SDXL and save it into ``directory`` (created); returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    build_tiny_pipeline(seed).save_pretrained(directory, safe_serialization=True)
    # The saved tokenizer.json is what loads; the plain BPE files stay beside it for tools
    # that read vocab.json and merges.txt.
    write_tokenizer_files(directory / "tokenizer")
    write_tokenizer_files(directory / "tokenizer_2")
    return directory
