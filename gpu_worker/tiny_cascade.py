"""A tiny random-weight Stable Cascade, built from configs, for tests and CPU development.

It has the components of a real Stable Cascade checkpoint: a text-conditioned prior
``StableCascadeUNet`` (16 latent channels, text and pooled-text conditioning, image
conditioning for variations), a decoder ``StableCascadeUNet`` conditioned on the prior's
latents (``effnet``), the Paella VQ model, a ``CLIPTextModelWithProjection`` with a locally
written byte-level BPE tokenizer, and the Wuerstchen schedulers. It is saved as one
``StableCascadeCombinedPipeline`` with ``save_pretrained`` and loads through ``from_pretrained``
like a published checkpoint. The images are noise-like patterns: the weights are random.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import diffusers
import torch
from diffusers.pipelines.deprecated.wuerstchen.modeling_paella_vq_model import PaellaVQModel
from transformers import CLIPTextModelWithProjection, CLIPVisionConfig

from gpu_worker.tiny import EOS, PROJECTION_DIM, _text_config, _tokenizer, write_tokenizer_files

_diffusers: Any = diffusers
_CLIP_VISION: Any = CLIPVisionConfig


def build_tiny_cascade(seed: int = 0) -> Any:
    """A tiny ``StableCascadeCombinedPipeline`` with random weights drawn from ``seed``."""
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    prior = _diffusers.StableCascadeUNet(
        conditioning_dim=64,
        block_out_channels=(64, 64),
        num_attention_heads=(2, 2),
        down_num_layers_per_block=(1, 1),
        up_num_layers_per_block=(1, 1),
        switch_level=(False,),
        clip_image_in_channels=PROJECTION_DIM,
        clip_text_in_channels=PROJECTION_DIM,
        clip_text_pooled_in_channels=PROJECTION_DIM,
        dropout=(0.0, 0.0),
    )
    decoder = _diffusers.StableCascadeUNet(
        in_channels=4,
        out_channels=4,
        conditioning_dim=64,
        block_out_channels=(16, 32, 64, 64),
        num_attention_heads=(-1, -1, 1, 2),
        down_num_layers_per_block=(1, 1, 1, 1),
        up_num_layers_per_block=(1, 1, 1, 1),
        down_blocks_repeat_mappers=(1, 1, 1, 1),
        up_blocks_repeat_mappers=(2, 2, 1, 1),
        block_types_per_layer=(
            ("SDCascadeResBlock", "SDCascadeTimestepBlock"),
            ("SDCascadeResBlock", "SDCascadeTimestepBlock"),
            ("SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock"),
            ("SDCascadeResBlock", "SDCascadeTimestepBlock", "SDCascadeAttnBlock"),
        ),
        switch_level=None,
        clip_text_pooled_in_channels=PROJECTION_DIM,
        effnet_in_channels=16,
        dropout=(0.0, 0.0, 0.0, 0.0),
    )
    vqgan = PaellaVQModel(bottleneck_blocks=1, num_vq_embeddings=2)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = _tokenizer(Path(tmp), "tokenizer", EOS)
    text_encoder = CLIPTextModelWithProjection(_text_config(tokenizer, PROJECTION_DIM))
    image_encoder = CLIPVisionModelWithProjection(
        _CLIP_VISION(
            hidden_size=32,
            projection_dim=PROJECTION_DIM,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=37,
            image_size=32,
            patch_size=8,
        )
    )
    feature_extractor = CLIPImageProcessor(
        crop_size=32, size=32, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    return _diffusers.StableCascadeCombinedPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        decoder=decoder,
        scheduler=_diffusers.DDPMWuerstchenScheduler(),
        vqgan=vqgan,
        prior_prior=prior,
        prior_text_encoder=text_encoder,
        prior_tokenizer=tokenizer,
        prior_scheduler=_diffusers.DDPMWuerstchenScheduler(),
        prior_feature_extractor=feature_extractor,
        prior_image_encoder=image_encoder,
    )


def write_tiny_cascade(directory: Path, seed: int = 0) -> Path:
    """Build the tiny Stable Cascade and save it into ``directory``; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    build_tiny_cascade(seed).save_pretrained(directory, safe_serialization=True)
    _set_native(directory / "prior_prior" / "config.json")
    for name in ("tokenizer", "prior_tokenizer"):
        write_tokenizer_files(directory / name)
    return directory


def write_tiny_cascade_pair(directory: Path, seed: int = 0) -> Path:
    """The same tiny Stable Cascade as two pipelines, as the published model comes: the
    decoder in ``directory`` and the prior in ``directory-prior``; returns ``directory``."""
    pipe = build_tiny_cascade(seed)
    decoder = _diffusers.StableCascadeDecoderPipeline(
        decoder=pipe.decoder,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        scheduler=pipe.scheduler,
        vqgan=pipe.vqgan,
    )
    prior = _diffusers.StableCascadePriorPipeline(
        prior=pipe.prior_prior,
        text_encoder=pipe.prior_text_encoder,
        tokenizer=pipe.prior_tokenizer,
        scheduler=pipe.prior_scheduler,
        image_encoder=pipe.prior_image_encoder,
        feature_extractor=pipe.prior_feature_extractor,
    )
    prior_dir = directory.with_name(directory.name + "-prior")
    for half, where in ((decoder, directory), (prior, prior_dir)):
        where.mkdir(parents=True, exist_ok=True)
        half.save_pretrained(where, safe_serialization=True)
        write_tokenizer_files(where / "tokenizer")
    _set_native(prior_dir / "prior" / "config.json")
    return directory


def _set_native(config_path: Path) -> None:
    # Its native side (gpu_worker.families.cascade): 3 prior latent cells, 128 px.
    config = json.loads(config_path.read_text())
    config["sample_size"] = 3
    config_path.write_text(json.dumps(config, indent=2))
