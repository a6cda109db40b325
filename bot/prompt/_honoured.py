"""What each honoured or mapped parameter sets on the request, and the notes it leaves.

``HANDLERS[slot](parameter, options)`` returns the request fields one parameter sets and the notes
for what it did not honour as written (``--s 1250: clamped to 1000``). Noted parameters never
reach here; ``--no``, ``--lora``, ``--sref`` and ``--cref``, which may repeat, are collected by the
parser.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from bot.prompt._aspect import parse_aspect
from bot.prompt._errors import PromptError
from bot.prompt._options import ParserOptions
from bot.prompt._values import (
    Parameter,
    format_number,
    is_number,
    parse_int,
    parse_number,
    require_flag,
    require_value,
)
from storage.contract import MAX_SEED, Control, ControlKind, SpeedMode

DEFAULT_MODEL = "default"
MAX_STYLIZE = 1000
MAX_V3_STYLIZE = 60_000
MIN_QUALITY, MAX_QUALITY = 0.25, 5.0  # what Midjourney took across versions (V7 adds 4)
MAX_SIZE = 8192
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# Style names Midjourney documents (V4 4a-4c, niji 5, style tuner randoms), and tuner codes.
_MIDJOURNEY_STYLES = re.compile(r"4[abc]|cute|expressive|original|scenic|random(?:-[0-9]+)?")
_STYLE_CODE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

Outcome = tuple[dict[str, Any], list[str]]


def _aspect(parameter: Parameter, options: ParserOptions) -> Outcome:
    # `16 : 9` and the full-width colon of Chinese keyboards mean 16:9.
    compact = re.sub(r"\s*[:\uff1a]\s*", ":", parameter.value)
    value = require_value(
        Parameter(parameter.name, parameter.slot, compact, parameter.typed), "16:9"
    )
    aspect, width, height = parse_aspect(value, flag=parameter.flag)
    return {"aspect": aspect, "width": width, "height": height}, []


def _seed(parameter: Parameter, options: ParserOptions) -> Outcome:
    seed = parse_int(parameter, 0, MAX_SEED, "1234")
    if parameter.name == "sameseed":
        return {"seed": seed}, [
            f"{parameter.shown}: used as the seed; the four images still use seeds "
            f"{seed} to {seed + 3}"
        ]
    return {"seed": seed}, []


def _stylize(parameter: Parameter, options: ParserOptions) -> Outcome:
    value = require_value(parameter, "250")
    if not value.isascii() or not value.isdigit() or int(value) > MAX_V3_STYLIZE:
        raise PromptError(
            f"`{parameter.flag}` must be a whole number from 0 to {MAX_STYLIZE} (Midjourney V3 "
            f"values up to {MAX_V3_STYLIZE} are clamped to {MAX_STYLIZE}); got `{value}`"
        )
    if int(value) > MAX_STYLIZE:
        return {"stylize": MAX_STYLIZE}, [f"{parameter.shown}: clamped to {MAX_STYLIZE}"]
    return {"stylize": int(value)}, []


def _quality(parameter: Parameter, options: ParserOptions) -> Outcome:
    value = require_value(parameter, "2")
    offered = sorted(options.steps_per_quality)
    low, high = min(MIN_QUALITY, offered[0]), max(MAX_QUALITY, offered[-1])
    if not is_number(value) or not low <= float(value) <= high:
        choices = ", ".join(format_number(q) for q in offered)
        raise PromptError(
            f"`{parameter.flag}` must be a number from {format_number(low)} to "
            f"{format_number(high)} (this server offers {choices}); got `{value}`"
        )
    asked = float(value)
    if asked in options.steps_per_quality:
        return {"quality": asked}, []
    # Nearest on a log scale: quality doubles the steps, so 4 is as far from 2 as 1 is.
    nearest = min(offered, key=lambda q: (abs(math.log(q / asked)), q))
    note = f"{parameter.shown}: painted at quality {format_number(nearest)}, the nearest offered"
    return {"quality": nearest}, [note]


def _flag_field(name: str) -> Callable[[Parameter, ParserOptions], Outcome]:
    def handle(parameter: Parameter, options: ParserOptions) -> Outcome:
        require_flag(parameter)
        return {name: True}, []

    return handle


def _style(parameter: Parameter, options: ParserOptions) -> Outcome:
    value = require_value(parameter, "raw").casefold()
    if value == "raw":
        return {"raw": True}, []
    style = options.style_table.get(value)
    if style is not None:
        return {"style": style}, []
    if _MIDJOURNEY_STYLES.fullmatch(value):
        available = ", ".join(["raw", *sorted(options.style_table)])
        return {}, [f"{parameter.shown}: no such style here (available: {available})"]
    if _STYLE_CODE.fullmatch(value):
        return {}, [f"{parameter.shown}: Midjourney style codes are not available here"]
    raise PromptError(
        f"`{parameter.flag}` takes a style name like `raw` or a style code; got `{parameter.value}`"
    )


def _mode(parameter: Parameter, options: ParserOptions) -> Outcome:
    require_flag(parameter)
    if parameter.name == "relax" and not options.allow_relax:
        raise PromptError("`--relax` is not available on this server; use `--fast`")
    return {"mode": SpeedMode(parameter.name)}, []


def _control(parameter: Parameter, options: ParserOptions) -> Outcome:
    value = require_value(parameter, "canny")
    kind, _, scale_text = value.partition(":")
    kinds = [str(k) for k in ControlKind]
    if kind.lower() not in kinds:
        allowed = " or ".join(f"`{k}`" for k in kinds)
        raise PromptError(
            f"`{parameter.flag}` must be {allowed}, optionally with a scale like `canny:0.8`; "
            f"got `{value}`"
        )
    scale = 0.5
    if scale_text or value.endswith(":"):
        if not is_number(scale_text) or not 0 <= float(scale_text) <= 2:
            raise PromptError(
                f"the scale in `{parameter.flag} {value}` must be a number from 0 to 2; "
                f"got `{scale_text}`"
            )
        scale = float(scale_text)
    return {"control": Control(ControlKind(kind.lower()), scale)}, []


def _size(parameter: Parameter, options: ParserOptions) -> Outcome:
    # Checked here; the parser pairs `--w` with `--h` once all parameters are known.
    return {parameter.slot: parse_int(parameter, 1, MAX_SIZE, "1024")}, []


def _model(parameter: Parameter, options: ParserOptions) -> Outcome:
    """``--v``/``--version``/``--niji``/``--model``: an alias, else the default model, noted."""
    numeric = False
    if parameter.name == "model":
        exact, fallback = [require_value(parameter, "NAME")], []
    elif parameter.name == "niji":
        version = _version(parameter) if parameter.value else ""
        numeric = True
        exact = [f"niji-{version}", f"niji{version}"] if version else ["niji"]
        fallback = ["niji"] if version else []
    else:
        version = _version(parameter)
        numeric = _VERSION.fullmatch(version) is not None
        exact = [version, f"v{version}"]
        major = version.split(".")[0]
        fallback = [major, f"v{major}"] if numeric and major != version else []
    if exact[0].casefold() == DEFAULT_MODEL:
        return {"model": None}, []
    by_folded = {name.casefold(): name for name in options.models}
    for candidate in exact:
        if candidate.casefold() in by_folded:
            return {"model": by_folded[candidate.casefold()]}, []
    if not numeric or options.strict_models:
        available = ", ".join([DEFAULT_MODEL, *sorted(options.models - {DEFAULT_MODEL})])
        raise PromptError(
            f"`{parameter.shown}`: model `{exact[0]}` is not available on this server; "
            f"available: {available}"
        )
    for candidate in fallback:
        if candidate.casefold() in by_folded:
            model = by_folded[candidate.casefold()]
            return {"model": model}, [f"{parameter.shown}: painted with the model `{model}`"]
    return {"model": None}, [f"{parameter.shown}: painted with the default model"]


def _version(parameter: Parameter) -> str:
    """``6.0`` -> ``6``; a name passes through (``--v photo`` may be an alias)."""
    value = require_value(parameter, "7")
    if _VERSION.fullmatch(value) is None:
        if parameter.name == "niji":
            raise PromptError(f"`--niji` takes nothing or a version number like `6`; got `{value}`")
        return value
    if not 1 <= float(value) < 10:
        raise PromptError(
            f"`{parameter.flag}` must be a Midjourney version from 1 to 9, like `6.1` or `7`; "
            f"got `{value}`"
        )
    # `--v 6.0` means the same model as `--v 6`.
    return format_number(float(value))


def _notr(parameter: Parameter, options: ParserOptions) -> Outcome:
    require_flag(parameter)
    return {"translate": False}, []


HANDLERS: dict[str, Callable[[Parameter, ParserOptions], Outcome]] = {
    "ar": _aspect,
    "seed": _seed,
    "chaos": lambda p, o: ({"chaos": parse_int(p, 0, 100, "50")}, []),
    "stylize": _stylize,
    "quality": _quality,
    "steps": lambda p, o: ({"steps": parse_int(p, 1, 100, "30")}, []),
    "stop": lambda p, o: ({"stop": parse_int(p, 10, 100, "80")}, []),
    "tile": _flag_field("tile"),
    "raw": _flag_field("raw"),
    "style": _style,
    "weird": lambda p, o: ({"weird": parse_int(p, 0, 3000, "250")}, []),
    "iw": lambda p, o: ({"image_weight": parse_number(p, 0.0, 3.0, "1.5")}, []),
    "sw": lambda p, o: ({"style_weight": parse_int(p, 0, 1000, "250")}, []),
    "cw": lambda p, o: ({"character_weight": parse_int(p, 0, 100, "50")}, []),
    "repeat": lambda p, o: ({"repeat": parse_int(p, 1, o.max_repeat, "2")}, []),
    "model": _model,
    "mode": _mode,
    "control": _control,
    "notr": _notr,
    "size_h": _size,
    "size_w": _size,
}
