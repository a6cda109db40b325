"""Aspect ratios: ``W:H`` reduced to lowest terms and mapped to an SDXL resolution.

SDXL was trained on buckets of about one megapixel with sides that are multiples of 64. The
named ratios use the customary SDXL sizes; any other ratio from 1:4 to 4:1 gets the candidate
size (multiples of 64, 0.9 to 1.1 megapixels) whose ratio is closest, ties going to the size
closest to 1024x1024 in area.
"""

from __future__ import annotations

import functools
import math
import re

from bot.prompt._errors import PromptError

NAMED_SIZES: dict[tuple[int, int], tuple[int, int]] = {
    (1, 1): (1024, 1024),
    (4, 3): (1152, 896),
    (3, 2): (1216, 832),
    (16, 9): (1344, 768),
    (7, 3): (1536, 640),  # 21:9 in lowest terms
    (2, 1): (1408, 704),
    (3, 1): (1728, 576),
}
MAX_RATIO = 4
_TARGET_AREA = 1024 * 1024
_RATIO = re.compile(r"([0-9]+):([0-9]+)")


@functools.cache
def _candidates() -> tuple[tuple[int, int], ...]:
    sizes = []
    for width in range(256, 4096 + 1, 64):
        for height in range(256, 4096 + 1, 64):
            if 0.9 * _TARGET_AREA <= width * height <= 1.1 * _TARGET_AREA:
                sizes.append((width, height))
    return tuple(sizes)


def sdxl_size(width_ratio: int, height_ratio: int) -> tuple[int, int]:
    """The SDXL ``(width, height)`` for a reduced ratio within 1:4..4:1."""
    if (width_ratio, height_ratio) in NAMED_SIZES:
        return NAMED_SIZES[width_ratio, height_ratio]
    if (height_ratio, width_ratio) in NAMED_SIZES:
        height, width = NAMED_SIZES[height_ratio, width_ratio]
        return width, height
    target = math.log(width_ratio / height_ratio)
    return min(
        _candidates(),
        key=lambda size: (
            abs(math.log(size[0] / size[1]) - target),
            abs(size[0] * size[1] - _TARGET_AREA),
        ),
    )


def parse_aspect(value: str, *, flag: str = "--ar") -> tuple[str, int, int]:
    """``"32:18"`` -> ``("16:9", 1344, 768)``; ``PromptError`` for malformed or extreme ratios.

    ``flag`` is the parameter the error messages name.
    """
    match = _RATIO.fullmatch(value.strip())
    if match is None or int(match[1]) == 0 or int(match[2]) == 0:
        raise PromptError(f"`{flag}` expects two whole numbers like `16:9` or `2:3`; got `{value}`")
    width, height = int(match[1]), int(match[2])
    divisor = math.gcd(width, height)
    width, height = width // divisor, height // divisor
    if width > MAX_RATIO * height or height > MAX_RATIO * width:
        raise PromptError(f"`{flag} {value}` is too extreme; allowed ratios range from 1:4 to 4:1")
    return f"{width}:{height}", *sdxl_size(width, height)
