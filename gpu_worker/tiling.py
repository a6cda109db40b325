"""Seamless tiling: circular padding on every padded convolution, for one render only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn


@contextmanager
def circular_padding(*modules: nn.Module) -> Iterator[int]:
    """Switch the padded Conv2d layers of ``modules`` to circular padding, restoring them after.

    Yields how many convolutions were switched. Circular padding makes the network see the image
    as a torus, so the left edge continues the right one and the top the bottom.
    """
    changed: list[tuple[nn.Conv2d, Any]] = []
    try:
        for module in modules:
            for layer in module.modules():
                if isinstance(layer, nn.Conv2d) and any(p > 0 for p in _padding(layer)):
                    changed.append((layer, layer.padding_mode))
                    layer.padding_mode = "circular"
        yield len(changed)
    finally:
        for layer, mode in changed:
            layer.padding_mode = mode


def _padding(layer: nn.Conv2d) -> tuple[int, ...]:
    padding = layer.padding
    if isinstance(padding, str):
        # "same" pads whenever the kernel is larger than 1.
        return tuple(k // 2 for k in layer.kernel_size) if padding == "same" else (0,)
    return tuple(padding)
