"""``parse``: prompt text to normalized ``GenerationRequest``s."""

from __future__ import annotations

import re
from typing import Any

from bot.prompt._aspect import parse_aspect
from bot.prompt._errors import PromptError
from bot.prompt._options import ParserOptions
from bot.prompt._params import (
    Parameter,
    format_number,
    normalize_dashes,
    parse_int,
    parse_number,
    require_flag,
    require_value,
    split_parameters,
)
from bot.prompt._permutations import expand
from bot.prompt._text import check_weight_sum, split_image_urls, split_segments
from storage.contract import MAX_SEED, GenerationRequest, SpeedMode, UserSettings

MAX_PROMPT_CHARS = 1500
MAX_REQUESTS = 16
DEFAULT_MODEL = "default"
_VERSION = re.compile(r"\d+(?:\.\d+)?")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def parse(
    text: str,
    *,
    options: ParserOptions = ParserOptions(),  # noqa: B008 - frozen, so sharing is safe
    defaults: UserSettings | None = None,
) -> list[GenerationRequest]:
    """All requests one ``/imagine`` text makes (permutations times ``--repeat``)."""
    text = text.strip()
    if not text:
        raise PromptError("the prompt is empty: describe what to imagine")
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptError(
            f"the prompt is {len(text):,} characters long; the limit is {MAX_PROMPT_CHARS:,}"
        )
    requests: list[GenerationRequest] = []
    variants = expand(normalize_dashes(text), MAX_REQUESTS)
    for variant in variants:
        request, repeat = _parse_one(variant, options, defaults or UserSettings())
        requests.extend([request] * repeat)
    if len(requests) > MAX_REQUESTS:
        raise PromptError(
            f"this prompt makes {len(requests)} requests ({len(variants)} permutations with "
            f"their repeats); the limit is {MAX_REQUESTS} per command"
        )
    return requests


def _parse_one(
    text: str, options: ParserOptions, defaults: UserSettings
) -> tuple[GenerationRequest, int]:
    prompt_text, parameters = split_parameters(text)
    values: dict[str, Any] = {}
    negatives: list[str] = []
    repeat = 1
    seen: dict[str, Parameter] = {}
    for parameter in parameters:
        slot = parameter.slot
        if slot == "no":
            items = [item.strip() for item in parameter.value.split(",")]
            if not any(items):
                raise PromptError("`--no` needs a value, like `--no text, watermark`")
            negatives.extend(item for item in items if item)
            continue
        if slot in seen:
            raise _duplicate(seen[slot], parameter)
        seen[slot] = parameter
        if slot == "repeat":
            repeat = parse_int(parameter, 1, options.max_repeat, "2")
        else:
            values.update(_value(parameter, options))

    image_urls, rest = split_image_urls(prompt_text)
    segments = split_segments(rest)
    if not segments:
        if image_urls:
            raise PromptError(
                "the prompt has only image URLs: add text describing what to imagine after them"
            )
        raise PromptError("the prompt is empty: describe what to imagine before the parameters")
    check_weight_sum(segments, bool(negatives))

    if "aspect" not in values and defaults.aspect:
        try:
            aspect, width, height = parse_aspect(defaults.aspect)
        except PromptError:
            raise PromptError(
                f"your /settings aspect ratio `{defaults.aspect}` is no longer valid; "
                "change it in /settings or add `--ar`"
            ) from None
        values.update(aspect=aspect, width=width, height=height)
    if "stylize" not in values and defaults.stylize is not None:
        if not 0 <= defaults.stylize <= 1000:
            raise PromptError(
                f"your /settings stylize `{defaults.stylize}` is outside 0 to 1000; "
                "change it in /settings or add `--stylize`"
            )
        values["stylize"] = defaults.stylize
    if "raw" not in values and defaults.raw:
        values["raw"] = True
    if "mode" not in values:
        if defaults.mode is SpeedMode.RELAX and not options.allow_relax:
            raise PromptError(
                "your /settings speed mode is relax, which this server does not offer; "
                "change it in /settings or add `--fast`"
            )
        values["mode"] = defaults.mode
    quality = values.get("quality", 1.0)
    values.setdefault("steps", options.steps_per_quality[quality])

    return (
        GenerationRequest(
            prompt=" ".join(segment for segment, weight in segments if weight > 0),
            segments=segments,
            negative_prompt=", ".join(negatives) if negatives else None,
            image_urls=image_urls,
            **values,
        ),
        repeat,
    )


def _duplicate(first: Parameter, second: Parameter) -> PromptError:
    if first.slot == "model":
        return PromptError(f"`{first.flag}` and `{second.flag}` both choose a model; use only one")
    if first.slot == "mode":
        if first.spelling == second.spelling:
            return PromptError(f"`{second.flag}` is given twice")
        return PromptError(f"`{first.flag}` and `{second.flag}` are both speed modes; use only one")
    if first.spelling == second.spelling:
        return PromptError(f"`{second.flag}` is given twice")
    return PromptError(f"`{first.flag}` and `{second.flag}` are the same parameter; give it once")


def _value(parameter: Parameter, options: ParserOptions) -> dict[str, Any]:
    """The request fields one parameter sets."""
    match parameter.slot:
        case "aspect":
            aspect, width, height = parse_aspect(require_value(parameter, "16:9"))
            return {"aspect": aspect, "width": width, "height": height}
        case "seed":
            return {"seed": parse_int(parameter, 0, MAX_SEED, "1234")}
        case "chaos":
            return {"chaos": parse_int(parameter, 0, 100, "50")}
        case "stylize":
            return {"stylize": parse_int(parameter, 0, 1000, "250")}
        case "weird":
            return {"weird": parse_int(parameter, 0, 3000, "250")}
        case "steps":
            return {"steps": parse_int(parameter, 1, 100, "30")}
        case "stop":
            return {"stop": parse_int(parameter, 10, 100, "80")}
        case "iw":
            return {"image_weight": parse_number(parameter, 0.0, 3.0, "1.5")}
        case "quality":
            return {"quality": _quality(parameter, options)}
        case "tile":
            require_flag(parameter)
            return {"tile": True}
        case "raw":
            if parameter.spelling == "style":
                if require_value(parameter, "raw").lower() != "raw":
                    raise PromptError(
                        f"`--style` supports only `raw` on this server; got `{parameter.value}`"
                    )
            else:
                require_flag(parameter)
            return {"raw": True}
        case "mode":
            require_flag(parameter)
            if parameter.spelling == "relax" and not options.allow_relax:
                raise PromptError("`--relax` is not available on this server; use `--fast`")
            return {"mode": SpeedMode(parameter.spelling)}
        case "model":
            return {"model": _model(parameter, options)}
    raise AssertionError(f"unhandled parameter slot {parameter.slot}")  # pragma: no cover


def _quality(parameter: Parameter, options: ParserOptions) -> float:
    value = require_value(parameter, "2")
    allowed = sorted(options.steps_per_quality)
    quality = float(value) if _NUMBER.fullmatch(value) else None
    if quality is None or quality not in options.steps_per_quality:
        choices = ", ".join(format_number(q) for q in allowed)
        raise PromptError(f"`{parameter.flag}` must be one of {choices}; got `{value}`")
    return quality


def _model(parameter: Parameter, options: ParserOptions) -> str | None:
    if parameter.spelling == "niji":
        version = parameter.value
        candidates = [f"niji-{version}", f"niji{version}"] if version else ["niji"]
        if " " in version:
            require_value(parameter, "6")
    elif parameter.spelling == "model":
        candidates = [require_value(parameter, "NAME")]
    else:
        version = require_value(parameter, "6")
        if _VERSION.fullmatch(version):
            # `--v 6.0` means the same model as `--v 6`.
            version = format_number(float(version))
        candidates = [version, f"v{version}"]
    if candidates[0].casefold() == DEFAULT_MODEL:
        return None
    by_folded = {name.casefold(): name for name in options.models}
    for candidate in candidates:
        if candidate.casefold() in by_folded:
            return by_folded[candidate.casefold()]
    available = ", ".join([DEFAULT_MODEL, *sorted(options.models - {DEFAULT_MODEL})])
    raise PromptError(
        f"model `{candidates[0]}` is not available on this server; available: {available}"
    )
