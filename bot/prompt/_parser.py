"""``parse``: prompt text to normalized ``GenerationRequest``s."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.prompt._aspect import parse_aspect
from bot.prompt._errors import PromptError
from bot.prompt._honoured import HANDLERS
from bot.prompt._options import ParserOptions
from bot.prompt._params import normalize_dashes, resolve_sizes, split_parameters
from bot.prompt._permutations import expand
from bot.prompt._references import parse_references
from bot.prompt._styles import MAX_LORAS, Style
from bot.prompt._table import BY_NAME, Treatment
from bot.prompt._text import check_weight_sum, split_image_urls, split_segments
from bot.prompt._values import Parameter, parse_lora
from storage.contract import GenerationRequest, SpeedMode, UserSettings

MAX_PROMPT_CHARS = 1500
MAX_REQUESTS = 16
# Prompts copied from Discord often start with the command itself.
_COMMAND = re.compile(r"/imagine\b(?:\s+prompt:)?\s*", re.IGNORECASE)
_NEGATIVE_SEPARATORS = re.compile(r"[,\uff0c\u3001]")  # ASCII, full-width and ideographic


def parse(
    text: str,
    *,
    options: ParserOptions = ParserOptions(),  # noqa: B008 - frozen, so sharing is safe
    defaults: UserSettings | None = None,
    image_attached: bool = False,
) -> list[GenerationRequest]:
    """All requests one ``/imagine`` text makes (permutations times ``--repeat``).

    ``image_attached``: the command came with an image, which counts as an image prompt.
    """
    text = _strip_command(text.strip())
    if not text:
        raise PromptError("the prompt is empty: describe what to imagine")
    if len(text) > MAX_PROMPT_CHARS:
        raise PromptError(
            f"the prompt is {len(text):,} characters long; the limit is {MAX_PROMPT_CHARS:,}"
        )
    requests: list[GenerationRequest] = []
    variants = expand(normalize_dashes(text), MAX_REQUESTS)
    for variant in variants:
        request, repeat = _parse_one(variant, options, defaults or UserSettings(), image_attached)
        requests.extend([request] * repeat)
    if len(requests) > MAX_REQUESTS:
        raise PromptError(
            f"this prompt makes {len(requests)} requests ({len(variants)} permutations with "
            f"their repeats); the limit is {MAX_REQUESTS} per command"
        )
    return requests


def _strip_command(text: str) -> str:
    while (match := _COMMAND.match(text)) is not None:
        text = text[match.end() :]
    return text


@dataclass
class _Found:
    """What the parameters of one prompt set, before the prompt text is looked at."""

    values: dict[str, Any] = field(default_factory=dict)
    winners: dict[str, Parameter] = field(default_factory=dict)
    negatives: list[str] = field(default_factory=list)
    loras: dict[str, tuple[float, Parameter]] = field(default_factory=dict)
    # --sref and --cref: the image URLs of each, in order.
    references: dict[str, list[str]] = field(default_factory=lambda: {"sref": [], "cref": []})
    notes: list[str] = field(default_factory=list)


def _collect(parameters: list[Parameter], options: ParserOptions) -> _Found:
    found = _Found()
    last = {parameter.slot: index for index, parameter in enumerate(parameters)}
    for index, parameter in enumerate(parameters):
        spec = BY_NAME[parameter.name]
        if spec.treatment is Treatment.NOTED:
            reason = spec.check(parameter) if spec.check is not None else None
            found.notes.append(f"{parameter.shown}: {reason or spec.effect}")
        elif parameter.slot == "no":
            items = [item.strip() for item in _NEGATIVE_SEPARATORS.split(parameter.value)]
            if not any(items):
                raise PromptError("`--no` needs a value, like `--no text, watermark`")
            found.negatives.extend(item for item in items if item)
        elif parameter.slot == "lora":
            name, weight = parse_lora(parameter)
            if name in found.loras:
                found.notes.append(_replaced(found.loras[name][1], parameter))
            found.loras[name] = (weight, parameter)
        elif parameter.slot in found.references:
            urls, notes = parse_references(parameter)
            found.references[parameter.slot].extend(urls)
            found.notes.extend(notes)
        else:
            values, notes = HANDLERS[parameter.slot](parameter, options)
            if last[parameter.slot] != index:
                # Validated all the same: a wrong value is an error even when overridden.
                found.notes.append(_replaced(parameter, parameters[last[parameter.slot]]))
                continue
            found.values.update(values)
            found.winners[parameter.slot] = parameter
            found.notes.extend(notes)
    return found


def _replaced(earlier: Parameter, later: Parameter) -> str:
    if earlier.shown == later.shown:
        return f"{earlier.shown}: given twice"
    return f"{earlier.shown}: replaced by the later {later.shown}"


def _parse_one(
    text: str, options: ParserOptions, defaults: UserSettings, image_attached: bool
) -> tuple[GenerationRequest, int]:
    # Again per permutation, so no request's text starts with the command (`{/imagine, a} b`).
    prompt_text, parameters, resumed = split_parameters(_strip_command(text.lstrip()))
    found = _collect(resolve_sizes(parameters), options)
    values = found.values
    repeat: int = values.pop("repeat", 1)
    style: Style | None = values.pop("style", None)
    _apply_size(found)

    image_urls, rest = split_image_urls(prompt_text)
    for piece in resumed:
        rest = _resume(rest, piece)
    segments = split_segments(rest)
    if not segments:
        if image_urls:
            raise PromptError(
                "the prompt has only image URLs: add text describing what to imagine after them"
            )
        raise PromptError("the prompt is empty: describe what to imagine before the parameters")
    if style is not None and style.suffix:
        segments = tuple(
            (f"{text.rstrip(' ,')}, {style.suffix}" if weight > 0 else text, weight)
            for text, weight in segments
        )
    check_weight_sum(segments, bool(found.negatives))
    control = found.winners.get("control")
    if control is not None and not image_urls and not image_attached:
        raise PromptError(
            f"`{control.shown}` needs an image: put an image URL at the start of the prompt "
            "or attach an image"
        )
    image_weight = found.winners.get("iw")
    if image_weight is not None and not image_urls and not image_attached:
        found.notes.append(
            f"{image_weight.shown}: ignored; there is no image prompt (an image URL at the start "
            "of the prompt, or an attached image)"
        )
        values.pop("image_weight", None)
    values["loras"] = _loras(style, found)
    _apply_references(found)
    _apply_defaults(values, defaults, options)
    return (
        GenerationRequest(
            prompt=" ".join(segment for segment, weight in segments if weight > 0),
            segments=segments,
            negative_prompt=", ".join(found.negatives) if found.negatives else None,
            image_urls=image_urls,
            notes=tuple(found.notes),
            **values,
        ),
        repeat,
    )


def _resume(rest: str, piece: str) -> str:
    """Prompt text that continued after a parameter, behind ``::``, joined back on."""
    piece = piece.strip()
    if not piece:
        return rest
    if not rest.strip():
        return piece
    return f"{rest.rstrip()} {piece}" if rest.rstrip().endswith("::") else f"{rest} :: {piece}"


def _apply_size(found: _Found) -> None:
    """``--w W --h H`` (Midjourney V1-V3) as an aspect ratio, unless ``--ar`` says otherwise."""
    width = found.values.pop("size_w", None)
    height = found.values.pop("size_h", None)
    given = [found.winners[slot] for slot in ("size_w", "size_h") if slot in found.winners]
    if not given:
        return
    shown = " ".join(parameter.shown for parameter in given)
    if width is None or height is None:
        found.notes.append(f"{shown}: Midjourney V1-V3 sizes are ignored here; use --ar")
        return
    if "ar" in found.winners:
        found.notes.append(f"{shown}: ignored; --ar sets the size")
        return
    try:
        aspect, w, h = parse_aspect(f"{width}:{height}")
    except PromptError:
        raise PromptError(
            f"`{shown}` is too extreme an aspect ratio; allowed ratios range from 1:4 to 4:1"
        ) from None
    found.values.update(aspect=aspect, width=w, height=h)
    found.notes.append(f"{shown}: painted at --ar {aspect} ({w}x{h})")


def _loras(style: Style | None, found: _Found) -> tuple[tuple[str, float], ...]:
    """The style's LoRAs, then the prompt's (which win for the same name); at most four."""
    loras = dict(style.loras) if style is not None else {}
    loras.update({name: weight for name, (weight, _) in found.loras.items()})
    if len(loras) > MAX_LORAS:
        raise PromptError(
            f"this prompt asks for {len(loras)} LoRAs (`--lora` and `--style` together); "
            f"at most {MAX_LORAS}"
        )
    return tuple(loras.items())


def _apply_references(found: _Found) -> None:
    """``--sref``/``--cref`` URLs with their weights; a weight with nothing to weigh is noted."""
    style = tuple(dict.fromkeys(found.references["sref"]))
    character = tuple(dict.fromkeys(found.references["cref"]))
    for slot, field_name, urls, role in (
        ("sw", "style_weight", style, "style"),
        ("cw", "character_weight", character, "character"),
    ):
        weight = found.winners.get(slot)
        if weight is not None and not urls:
            found.values.pop(field_name, None)
            reference = "--sref" if slot == "sw" else "--cref"
            found.notes.append(
                f"{weight.shown}: ignored; there is no {role} reference image ({reference} URL)"
            )
    if style:
        found.values["style_refs"] = style
    if character:
        found.values["character_refs"] = character


def _apply_defaults(values: dict[str, Any], defaults: UserSettings, options: ParserOptions) -> None:
    """The user's /settings where the prompt is silent, then steps from the quality."""
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
