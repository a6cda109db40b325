"""The prompt text: leading image URLs, then ``::``-weighted segments.

``space:: ship::2`` is two segments, ``space`` (weight 1: ``::`` with no number) and ``ship``
(weight 2). A number directly after ``::`` is the weight of the text before it; text after the
last ``::`` gets weight 1.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

from bot.prompt._errors import PromptError
from bot.prompt._values import format_number

MAX_WEIGHT = 1000.0
NO_WEIGHT = -0.5  # `--no x` counts like `x::-0.5` towards the weight sum
_URL = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]*://\S+)>|([A-Za-z][A-Za-z0-9+.-]*://\S+)")
_WEIGHT = re.compile(r"(-?(?:\d+(?:\.\d*)?|\.\d+))(?=\s|$)")


def split_image_urls(text: str) -> tuple[tuple[str, ...], str]:
    """Leading ``http(s)://`` tokens (``<...>`` allowed, as Discord writes them) and the rest."""
    urls: list[str] = []
    rest = text.strip()
    while rest:
        token, *remainder = rest.split(maxsplit=1)
        match = _URL.fullmatch(token)
        if match is None:
            break
        url = match[1] or match[2]
        try:
            parts = urlsplit(url)
            hostname = parts.hostname
        except ValueError:
            raise PromptError(f"`{url}` is not a valid image URL") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise PromptError(f"image URLs must start with http:// or https://; got `{url}`")
        if not hostname:
            raise PromptError(f"`{url}` is not a valid image URL: it has no host name")
        urls.append(url)
        rest = remainder[0] if remainder else ""
    return tuple(urls), rest


def _weight(text: str) -> float:
    weight = float(text)
    if not -MAX_WEIGHT <= weight <= MAX_WEIGHT:
        raise PromptError(
            f"the weight `::{text}` is out of range; weights go from "
            f"{format_number(-MAX_WEIGHT)} to {format_number(MAX_WEIGHT)}"
        )
    return weight


def split_segments(text: str) -> tuple[tuple[str, float], ...]:
    """``a:: b::2 c::-0.5`` -> ``(("a", 1.0), ("b", 2.0), ("c", -0.5))``."""
    pieces = text.split("::")
    segments: list[tuple[str, float]] = []
    current = pieces[0]
    for piece in pieces[1:]:
        match = _WEIGHT.match(piece)
        weight = _weight(match[1]) if match else 1.0
        label = f"::{match[1]}" if match else "::"
        segment = " ".join(current.split())
        if not segment:
            raise PromptError(f"`{label}` needs text before it, like `space{label} ship`")
        segments.append((segment, weight))
        current = piece[match.end() :] if match else piece
    last = " ".join(current.split())
    if last:
        segments.append((last, 1.0))
    return tuple(segments)


def check_weight_sum(segments: tuple[tuple[str, float], ...], has_negative: bool) -> None:
    """The weights, with ``--no`` counted as -0.5, must add up to more than zero."""
    total = math.fsum(weight for _, weight in segments) + (NO_WEIGHT if has_negative else 0.0)
    if total <= 0:
        counted = " (`--no` counts as -0.5)" if has_negative else ""
        raise PromptError(
            f"the `::` weights add up to {format_number(round(total, 6))}{counted}; "
            "their sum must be positive"
        )
