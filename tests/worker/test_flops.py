"""The UNet FLOPs formula against PyTorch's own count of the same forward pass."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from gpu_worker.flops import unet_flops
from gpu_worker.fullsize import SDXL_BASE, build_component
from gpu_worker.tiny import build_tiny_pipeline


def counted(unet: Any, height: int, width: int, batch: int = 2) -> float:
    """FLOPs per sample of one forward, as FlopCounterMode counts them."""
    config = unet.config
    pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
    with torch.device(unet.device):
        sample = torch.randn(batch, config.in_channels, height, width, dtype=unet.dtype)
        text = torch.randn(batch, 77, config.cross_attention_dim, dtype=unet.dtype)
        added = {
            "text_embeds": torch.randn(batch, pooled, dtype=unet.dtype),
            "time_ids": torch.randn(batch, 6, dtype=unet.dtype),
        }
        # The math kernel is plain matmuls, which the counter sees; the fused CPU kernel is not.
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as f:
            unet(sample, torch.tensor(10.0), text, added_cond_kwargs=added)
    return float(f.get_total_flops()) / batch


@pytest.mark.parametrize(("height", "width"), [(8, 8), (6, 10), (11, 7)])
def test_formula_matches_a_direct_count_on_the_tiny_unet(height: int, width: int) -> None:
    unet = build_tiny_pipeline().unet
    ours = unet_flops(unet.config, height, width)
    assert ours.total == pytest.approx(counted(unet, height, width), rel=1e-3)
    assert ours.attention > 0 and ours.conv > 0 and ours.linear > 0


@pytest.mark.parametrize(("height", "width"), [(128, 128), (104, 152)])
def test_formula_matches_a_direct_count_on_the_full_size_unet(height: int, width: int) -> None:
    # On the meta device: shapes only, so the 2.6 B-parameter UNet costs nothing to run.
    with torch.device("meta"):
        unet = build_component(SDXL_BASE, "unet")
    ours = unet_flops(unet.config, height, width)
    assert ours.total == pytest.approx(counted(unet, height, width), rel=1e-3)
    # A 1024x1024 SDXL sample is several TFLOPs, dominated by the linear layers.
    assert ours.linear > ours.conv > ours.attention


def test_formula_grows_with_the_latent_size_and_refuses_other_architectures() -> None:
    config = dict(build_tiny_pipeline().unet.config)
    small, large = unet_flops(config, 8, 8).total, unet_flops(config, 16, 16).total
    assert 3.5 < large / small < 5  # mostly per-pixel work, attention grows faster
    with pytest.raises(ValueError, match="SDXL-type UNets"):
        unet_flops({**config, "down_block_types": ["SimpleCrossAttnDownBlock2D", "X"]}, 8, 8)
    with pytest.raises(ValueError, match="latent size must be positive"):
        unet_flops(config, 0, 8)
