"""Tiny random versions of the optional components, matching the tiny SDXL (``gpu_worker.tiny``).

Each is written the way the real one is published and loads through the same path: a distilled
UNet directory (``save_pretrained``) for the turbo profile, LoRA ``.safetensors`` files in
diffusers' format (``save_lora_weights``) for a style and for the draft profile's LCM-style
LoRA, canny and depth ControlNets (``save_pretrained``), a DPT depth estimator and an
IP-Adapter with its image encoder, a zh->en MarianMT translation model.
``write_extras`` writes them all and a TOML config wiring them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import diffusers
import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from gpu_worker.tiny import build_tiny_pipeline

_diffusers: Any = diffusers
LORA_RANK = 4
STYLE_TRIGGER = "tinystyle"
IMAGE_EMBED_DIM = 32


def write_tiny_unet(directory: Path, seed: int = 1) -> Path:
    """A UNet shaped like the tiny SDXL's, other random weights (a stand-in distilled UNet)."""
    unet = build_tiny_pipeline(seed).unet
    unet.save_pretrained(directory, safe_serialization=True)
    return directory


def write_tiny_lora(path: Path, seed: int = 2) -> Path:
    """A random LoRA for the tiny SDXL's UNet attention, as one ``.safetensors`` file."""
    pipe = build_tiny_pipeline(0)
    torch.manual_seed(seed)
    # init_lora_weights=False draws both LoRA matrices at random, so the LoRA changes images.
    config = LoraConfig(
        r=LORA_RANK,
        lora_alpha=LORA_RANK,
        init_lora_weights=False,
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
    )
    pipe.unet.add_adapter(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    _diffusers.StableDiffusionXLPipeline.save_lora_weights(
        path.parent,
        weight_name=path.name,
        safe_serialization=True,
        unet_lora_layers=get_peft_model_state_dict(pipe.unet),
    )
    return path


def write_tiny_depth_estimator(directory: Path, seed: int = 6) -> Path:
    """A tiny random DPT depth estimator with its image processor (a transformers model)."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    torch.manual_seed(seed)
    config = DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=37,
        image_size=32,
        patch_size=8,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 16, 16, 32],
        fusion_hidden_size=16,
        reassemble_factors=[4, 2, 1, 0.5],
    )
    DPTForDepthEstimation(config).save_pretrained(directory)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(
        directory
    )
    return directory


def write_tiny_controlnet(directory: Path, seed: int = 4) -> Path:
    """A canny-style ControlNet derived from the tiny UNet (``ControlNetModel.from_unet``).

    ``from_unet`` starts the ControlNet's output convolutions at zero, as training does, which
    would leave images untouched; they get small random weights so the control shows.
    """
    controlnet = _diffusers.ControlNetModel.from_unet(
        build_tiny_pipeline(0).unet, conditioning_embedding_out_channels=(8, 16, 32, 32)
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            block.weight.copy_(torch.randn(block.weight.shape, generator=generator) * 0.3)
        for layer in controlnet.controlnet_cond_embedding.modules():
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * 0.3)
    controlnet.save_pretrained(directory, safe_serialization=True)
    return directory


def write_tiny_ip_adapter(directory: Path, seed: int = 7) -> tuple[Path, Path]:
    """A random IP-Adapter for the tiny UNet in the published format, and its image encoder.

    The weights file holds ``image_proj.*`` (an ``ImageProjection``: four tokens of the UNet's
    cross-attention width from the encoder's image embedding) and ``ip_adapter.N.to_k_ip`` /
    ``to_v_ip`` for the cross-attention processors in order (N = 1, 3, 5, ...), what
    ``load_ip_adapter`` reads; the encoder is a tiny ``CLIPVisionModelWithProjection``.
    Returns (weights file, encoder directory).
    """
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    encoder_dir = directory / "image_encoder"
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=IMAGE_EMBED_DIM,
    )
    CLIPVisionModelWithProjection(vision).save_pretrained(encoder_dir)
    unet = build_tiny_pipeline(0).unet
    width = int(unet.config.cross_attention_dim)
    tensors = {
        "image_proj.proj.weight": torch.randn(4 * width, IMAGE_EMBED_DIM) * 0.2,
        "image_proj.proj.bias": torch.zeros(4 * width),
        "image_proj.norm.weight": torch.ones(width),
        "image_proj.norm.bias": torch.zeros(width),
    }
    channels = list(unet.config.block_out_channels)
    key = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        for part in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{key}.{part}.weight"] = torch.randn(hidden, width) * 0.3
        key += 2
    weights = directory / "ip-adapter_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(weights))
    return weights, encoder_dir


def _toml_string(value: str | Path) -> str:
    # A TOML basic string: JSON's escaping is valid TOML for these characters.
    return json.dumps(str(value))


def write_extras(directory: Path) -> Path:
    """Write every tiny optional component under ``directory/extras`` and the config wiring
    them, ``directory/extras.toml`` (the tiny SDXL itself is expected in ``directory``)."""
    root = directory / "extras"
    turbo = write_tiny_unet(root / "turbo-unet")
    style = write_tiny_lora(root / "loras" / "tiny-style.safetensors", seed=2)
    lcm = write_tiny_lora(root / "lcm-lora.safetensors", seed=3)
    canny = write_tiny_controlnet(root / "controlnet-canny", seed=4)
    depth = write_tiny_controlnet(root / "controlnet-depth", seed=5)
    estimator = write_tiny_depth_estimator(root / "depth-estimator")
    ip_weights, ip_encoder = write_tiny_ip_adapter(root / "ip-adapter")
    translator = write_tiny_translator(root / "translate-zh-en")
    lines = [
        "# Tiny random optional components for the tiny SDXL in this directory.",
        f"model = {_toml_string(directory)}",
        f"depth_estimator = {_toml_string(estimator)}",
        f"ip_adapter = {_toml_string(ip_weights)}",
        f"ip_adapter_image_encoder = {_toml_string(ip_encoder)}",
        f"translation_model = {_toml_string(translator)}",
        "",
        "[profiles.turbo]  # a distilled UNet, as SDXL-Lightning ships",
        f"unet = {_toml_string(turbo)}",
        'scheduler = "euler_trailing"',
        "steps = 2",
        "guidance = 0.0",
        "",
        "[profiles.draft]  # a distillation LoRA, as LCM-LoRA ships; rendered smaller",
        f"lora = {_toml_string(lcm)}",
        'scheduler = "lcm"',
        "steps = 2",
        "guidance = 1.0",
        "size = 32",
        "",
        "[loras.tiny-style]",
        f"path = {_toml_string(style)}",
        f'trigger = "{STYLE_TRIGGER}"',
        "weight = 0.8",
        "",
        "[controlnets]",
        f"canny = {_toml_string(canny)}",
        f"depth = {_toml_string(depth)}",
    ]
    config = directory / "extras.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


# A few caption pairs to learn the tiny translation tokenizer's vocabulary from.
_TRANSLATION_LINES = (
    "一只红色的狐狸在雪地里",
    "a red fox in the snow",
    "日落时的灯塔",
    "a lighthouse at sunset",
    "山上的城堡, 油画",
    "a castle on the mountain, oil painting",
    "可爱的猫, 水彩",
    "a cute cat, watercolor",
)


def write_tiny_translator(directory: Path, seed: int = 8) -> Path:
    """A tiny random MarianMT zh->en model and a BPE tokenizer trained on a few lines."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    bpe.train_from_iterator(
        _TRANSLATION_LINES,
        trainers.BpeTrainer(
            vocab_size=200, special_tokens=["<pad>", "</s>", "<unk>"], show_progress=False
        ),
    )
    eos = bpe.token_to_id("</s>")
    bpe.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", eos)]
    )
    fast: Any = PreTrainedTokenizerFast
    tokenizer = fast(tokenizer_object=bpe, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(seed)
    pad = tokenizer.pad_token_id
    config = MarianConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=pad,
    )
    MarianMTModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
