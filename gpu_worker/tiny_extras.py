"""Tiny random versions of the optional components, matching the tiny SDXL (``gpu_worker.tiny``).

Each is written the way the real one is published and loads through the same path: a distilled
UNet directory (``save_pretrained``) for the turbo profile, LoRA ``.safetensors`` files in
diffusers' format (``save_lora_weights``) for a style and for the draft profile's LCM-style
LoRA. ``write_extras`` writes them all and a TOML config wiring them.
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
    lines = [
        "# Tiny random optional components for the tiny SDXL in this directory.",
        f"model = {_toml_string(directory)}",
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
    ]
    config = directory / "extras.toml"
    config.write_text("\n".join(lines) + "\n")
    return config
