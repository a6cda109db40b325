"""Cutting ``text --ar 16:9 --no x`` into the prompt part and its parameters.

Loose syntax people really type is accepted here: em and en dashes (and the doubled ones a
Chinese keyboard types) for ``--``, punctuation right after a value (``--ar 16:9,``), a
dangling ``--`` at the end, and prompt text that continues after a parameter behind ``::``
(``URL --iw 0.75 :: text :: more text``).
"""

from __future__ import annotations

import dataclasses
import difflib
import re

from bot.prompt._errors import PromptError
from bot.prompt._table import BY_NAME
from bot.prompt._values import Parameter

# Words people type for a parameter that difflib cannot relate to its short name.
_SYNONYMS = {
    "ratio": "ar", "aspectratio": "ar", "aspect-ratio": "ar", "size": "ar",
    "resolution": "ar", "negative": "no", "neg": "no", "negative-prompt": "no",
    "exclude": "no", "without": "no", "cfg": "stylize", "guidance": "stylize",
    "step": "steps", "variety": "chaos", "n": "repeat", "count": "repeat",
    "imageweight": "iw", "image-weight": "iw", "weirdness": "weird", "tiling": "tile",
    "tiled": "tile", "seamless": "tile", "stylise": "stylize", "styles": "style",
}  # fmt: skip

_DASH = "\u2014\u2013\u2012\u2015\u2212\uff0d"  # em, en, figure, bar, minus, full-width hyphen
# A parameter starts a word, or directly follows a `::` weight marker (`a cat::--ar 2:1`).
_START = r"(?:(?<!\S)|(?<=::))"
_DASHES = re.compile(rf"{_START}(?:[{_DASH}]{{1,2}}|[{_DASH}]-|-[{_DASH}])(?=[A-Za-z])")
_PARAMETER = re.compile(rf"{_START}--([A-Za-z]\S*)")
# Prompt text resumes after a parameter at a `::`; in reference lists only at one that starts
# a word, since `--sref URL::2` weighs that reference.
_RESUME = re.compile(r"::")
_RESUME_WORD = re.compile(r"(?<!\S)::")
_REFERENCE_SLOTS = frozenset({"sref", "cref", "oref", "p", "end"})
_TRAILING = ".,;!?。，、；！？\"'`”’」』)"
_DANGLING = re.compile(rf"(?:\s+[-{_DASH}]+)+$")
# Values that are free text keep their punctuation.
_TEXT_SLOTS = frozenset({"no"})


def normalize_dashes(text: str) -> str:
    """Phones and some keyboards turn ``--`` into dashes; turn them back before a parameter."""
    return _DASHES.sub("--", text)


def _unknown(name: str) -> PromptError:
    suggestion = _SYNONYMS.get(name)
    if suggestion is None:
        prefixes = [known for known in BY_NAME if name.startswith(known)]
        longest = max(prefixes, key=len, default=None)
        if longest is not None and not name[len(longest)].isalpha():
            return PromptError(
                f"`--{name}` is not a known parameter; did you mean "
                f"`--{longest} {name[len(longest) :]}`?"
            )
        close = difflib.get_close_matches(name, list(BY_NAME), n=1, cutoff=0.6)
        suggestion = close[0] if close else None
    if suggestion is None:
        return PromptError(f"`--{name}` is not a known parameter; see the list with /help")
    return PromptError(f"`--{name}` is not a known parameter; did you mean `--{suggestion}`?")


def _name(raw: str) -> tuple[str, str]:
    """The known lowercase name and the typed spelling, trailing punctuation dropped."""
    name = raw.lower()
    if name not in BY_NAME and name.rstrip(_TRAILING) in BY_NAME:
        raw = raw.rstrip(_TRAILING)
        name = raw.lower()
    if name not in BY_NAME:
        raise _unknown(name)
    return name, raw


def split_parameters(text: str) -> tuple[str, list[Parameter], list[str]]:
    """The prompt before the first ``--name``, every parameter after it, and resumed text.

    The resumed text is whatever follows a ``::`` inside a parameter's value; it belongs to
    the prompt.
    """
    matches = list(_PARAMETER.finditer(text))
    if not matches:
        return text, [], []
    parameters = []
    resumed: list[str] = []
    for index, match in enumerate(matches):
        name, typed = _name(match[1])
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        value = text[match.end() : end]
        spec = BY_NAME[name]
        cut = (_RESUME_WORD if spec.key in _REFERENCE_SLOTS else _RESUME).search(value)
        if cut is not None:
            resumed.append(value[cut.end() :])
            value = value[: cut.start()]
        if spec.key not in _TEXT_SLOTS:
            value = _DANGLING.sub("", " " + value.rstrip()).rstrip().rstrip(_TRAILING)
        value = " ".join(value.split())
        parameters.append(Parameter(name, spec.key, value, f"--{typed}"))
    return text[: matches[0].start()], parameters, resumed


def resolve_sizes(parameters: list[Parameter]) -> list[Parameter]:
    """Midjourney V1-V3 sized images with ``--w W --h H``: there, ``--w`` is the width."""
    if not any(parameter.slot == "size_h" for parameter in parameters):
        return parameters
    return [
        dataclasses.replace(parameter, slot="size_w") if parameter.name == "w" else parameter
        for parameter in parameters
    ]
