"""Floating-point operations of an SDXL-type UNet forward pass, from the UNet's own config.

Counted as PyTorch's ``FlopCounterMode`` counts them: 2 per multiply-add of every convolution,
linear layer and attention matmul; normalisations, activations, softmax, additions and resizes
are not counted (they are a few percent of the time and far less of the work). Per latent
sample, at h x w latent cells (pixels / 8), with N = h_l * w_l tokens at level l, C channels,
L text tokens of width X:

- convolution: 2 * H_out * W_out * C_in * C_out * k^2
- linear: 2 * rows * in * out (time embeddings have one row; resnet time projections too)
- transformer block: self-attention 8*N*C^2 + 4*N^2*C, cross-attention 4*N*C^2 + 4*N*L*C
  + 4*L*X*C, GEGLU feed-forward 24*N*C^2; plus 4*N*C^2 for each transformer's proj_in/out

The sum is one forward of one sample; a grid step with classifier-free guidance runs it for
2 x images samples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FORMULA = (
    "UNet FLOPs per sample = sum of 2*Hout*Wout*Cin*Cout*k^2 (convs) + 2*rows*in*out (linears) "
    "+ per transformer block [36*N*C^2 + 4*N^2*C + 4*N*L*C + 4*L*X*C] + 4*N*C^2 per transformer "
    "(N tokens = h*w latent cells at that level, C channels, L=77 text tokens of width X); "
    "MFU = FLOPs per sample * samples per step (2 x images with guidance) * steps / seconds "
    "/ peak dense bf16 FLOP/s"
)
_DOWN = ("DownBlock2D", "CrossAttnDownBlock2D")
_UP = ("UpBlock2D", "CrossAttnUpBlock2D")


@dataclass
class FlopCount:
    """FLOPs by kind of operation."""

    conv: int = 0
    linear: int = 0
    attention: int = 0
    parts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All counted FLOPs."""
        return self.conv + self.linear + self.attention

    def add(self, part: str, kind: str, flops: int) -> None:
        """Add ``flops`` of ``kind`` (conv, linear, attention) to ``part`` of the network."""
        setattr(self, kind, getattr(self, kind) + flops)
        self.parts[part] = self.parts.get(part, 0) + flops


def _per_level(value: Any, levels: int, name: str) -> list[Any]:
    if isinstance(value, int):
        return [value] * levels
    if isinstance(value, Sequence) and len(value) == levels:
        return list(value)
    raise ValueError(f"unet config {name} must be an int or one value per level, got {value!r}")


def _down(size: tuple[int, int]) -> tuple[int, int]:
    # A 3x3 convolution with stride 2 and padding 1 gives ceil(side / 2).
    return (size[0] + 1) // 2, (size[1] + 1) // 2


def unet_flops(
    config: Mapping[str, Any], height: int, width: int, *, text_tokens: int = 77
) -> FlopCount:
    """FLOPs of one forward pass for one latent sample of ``height`` x ``width`` cells."""
    if height <= 0 or width <= 0:
        raise ValueError(f"latent size must be positive, got {width}x{height}")
    for key, allowed in (
        ("down_block_types", _DOWN),
        ("up_block_types", _UP),
        ("mid_block_type", ("UNetMidBlock2DCrossAttn",)),
        ("addition_embed_type", (None, "text_time")),
        ("class_embed_type", (None,)),
    ):
        values = config.get(key)
        values = values if isinstance(values, list | tuple) else [values]
        if key == "mid_block_type" and values == [None]:
            values = ["UNetMidBlock2DCrossAttn"]
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise ValueError(f"unet_flops counts SDXL-type UNets; {key} {unknown} is not one")
    count = FlopCount()
    channels = list(config["block_out_channels"])
    levels = len(channels)
    layers = _per_level(config.get("layers_per_block", 2), levels, "layers_per_block")
    depth = _per_level(
        config.get("transformer_layers_per_block", 1), levels, "transformer_layers_per_block"
    )
    cross = _per_level(config["cross_attention_dim"], levels, "cross_attention_dim")
    k_in, k_out = config.get("conv_in_kernel", 3), config.get("conv_out_kernel", 3)
    time_dim = config.get("time_embedding_dim") or channels[0] * 4

    def conv(part: str, size: tuple[int, int], c_in: int, c_out: int, kernel: int = 3) -> None:
        count.add(part, "conv", 2 * size[0] * size[1] * c_in * c_out * kernel * kernel)

    def linear(part: str, rows: int, c_in: int, c_out: int) -> None:
        count.add(part, "linear", 2 * rows * c_in * c_out)

    def resnet(part: str, size: tuple[int, int], c_in: int, c_out: int) -> None:
        conv(part, size, c_in, c_out)
        linear(part, 1, time_dim, c_out)
        conv(part, size, c_out, c_out)
        if c_in != c_out:
            conv(part, size, c_in, c_out, 1)

    def transformer(part: str, size: tuple[int, int], c: int, blocks: int, x: int) -> None:
        n, ln = size[0] * size[1], text_tokens
        linear(part, n, c, c)  # proj_in (a 1x1 convolution costs the same)
        for _ in range(blocks):
            linear(part, n, c, 3 * c)  # self-attention q, k, v
            count.add(part, "attention", 4 * n * n * c)
            linear(part, n, c, c)  # self-attention out
            linear(part, n, c, c)  # cross-attention q
            linear(part, ln, x, 2 * c)  # cross-attention k, v from the text
            count.add(part, "attention", 4 * n * ln * c)
            linear(part, n, c, c)  # cross-attention out
            linear(part, n, c, 8 * c)  # GEGLU: value and gate, 4C each
            linear(part, n, 4 * c, c)
        linear(part, n, c, c)  # proj_out

    size = (height, width)
    conv("conv_in", size, config.get("in_channels", 4), channels[0], k_in)
    linear("time_embedding", 1, channels[0], time_dim)
    linear("time_embedding", 1, time_dim, time_dim)
    if config.get("addition_embed_type") == "text_time":
        linear("add_embedding", 1, config["projection_class_embeddings_input_dim"], time_dim)
        linear("add_embedding", 1, time_dim, time_dim)

    sizes, skips, c_prev = [], [channels[0]], channels[0]
    for level, kind in enumerate(config["down_block_types"]):
        part, c = f"down_{level}", channels[level]
        sizes.append(size)
        for layer in range(layers[level]):
            resnet(part, size, c_prev if layer == 0 else c, c)
            if kind == "CrossAttnDownBlock2D":
                transformer(part, size, c, depth[level], cross[level])
            skips.append(c)
        c_prev = c
        if level < levels - 1:
            size = _down(size)
            conv(part, size, c, c)
            skips.append(c)

    c = channels[-1]
    resnet("mid", size, c, c)
    transformer("mid", size, c, depth[-1], cross[-1])
    resnet("mid", size, c, c)

    rev_channels, rev_layers = channels[::-1], layers[::-1]
    rev_depth = list(config.get("reverse_transformer_layers_per_block") or depth[::-1])
    rev_cross = cross[::-1]
    c_prev = rev_channels[0]
    for i, kind in enumerate(config["up_block_types"]):
        part, c = f"up_{i}", rev_channels[i]
        for layer in range(rev_layers[i] + 1):
            c_in = (c_prev if layer == 0 else c) + skips.pop()
            resnet(part, size, c_in, c)
            if kind == "CrossAttnUpBlock2D":
                transformer(part, size, c, rev_depth[i], rev_cross[i])
        c_prev = c
        if i < levels - 1:
            size = sizes[levels - 2 - i]
            conv(part, size, c, c)

    conv("conv_out", size, channels[0], config.get("out_channels", 4), k_out)
    return count
