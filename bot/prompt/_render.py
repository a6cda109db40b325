"""``render``: a request back to prompt text, for the job message."""

from __future__ import annotations

import re

from bot.prompt._options import ParserOptions
from bot.prompt._permutations import escape
from bot.prompt._values import format_number
from storage.contract import GenerationRequest, SpeedMode

_VERSION = re.compile(r"\d+(?:\.\d+)?")


def _text(request: GenerationRequest) -> str:
    segments = request.segments
    if not segments or segments == ((request.prompt, 1.0),):
        return escape(request.prompt)
    # A space keeps a text ending in ":" from running into the `::` that follows it.
    return " ".join(
        f"{escape(text)}{' ' if text.endswith(':') else ''}::{format_number(weight)}"
        for text, weight in segments
    )


def _model(model: str) -> str:
    if model == "niji":
        return "--niji"
    if _VERSION.fullmatch(model) and format_number(float(model)) == model:
        return f"--v {model}"
    return f"--model {escape(model)}"


def render(request: GenerationRequest, *, options: ParserOptions | None = None) -> str:
    """Prompt text for ``request`` with only its non-default parameters.

    Parsing the result (with the same ``options`` and no user defaults) gives ``request`` back,
    less its ``notes``: only what is honoured is rendered.
    """
    options = options or ParserOptions()
    parts = [escape(url) for url in request.image_urls]
    parts.append(_text(request))
    if request.aspect != "1:1":
        parts.append(f"--ar {request.aspect}")
    if request.seed is not None:
        parts.append(f"--seed {request.seed}")
    if request.chaos:
        parts.append(f"--chaos {request.chaos}")
    if request.stylize != 100:
        parts.append(f"--stylize {request.stylize}")
    if request.quality != 1.0:
        parts.append(f"--q {format_number(request.quality)}")
    if request.steps != options.steps_per_quality.get(request.quality):
        parts.append(f"--steps {request.steps}")
    if request.stop != 100:
        parts.append(f"--stop {request.stop}")
    if request.weird:
        parts.append(f"--weird {request.weird}")
    if request.image_weight != 1.0:
        parts.append(f"--iw {format_number(request.image_weight)}")
    if request.tile:
        parts.append("--tile")
    if request.raw:
        parts.append("--raw")
    if request.model is not None:
        parts.append(_model(request.model))
    if request.mode is not SpeedMode.FAST:
        parts.append(f"--{request.mode}")
    for name, weight in request.loras:
        parts.append(
            f"--lora {escape(name)}" + (f":{format_number(weight)}" if weight != 1 else "")
        )
    if request.control is not None:
        parts.append(f"--control {request.control.kind}:{format_number(request.control.scale)}")
    if request.style_refs:
        parts.append("--sref " + " ".join(escape(url) for url in request.style_refs))
        if request.style_weight != 100:
            parts.append(f"--sw {request.style_weight}")
    if request.character_refs:
        parts.append("--cref " + " ".join(escape(url) for url in request.character_refs))
        if request.character_weight != 100:
            parts.append(f"--cw {request.character_weight}")
    if not request.translate:
        parts.append("--notr")
    if request.negative_prompt:
        parts.append(f"--no {escape(request.negative_prompt)}")
    return " ".join(parts)
