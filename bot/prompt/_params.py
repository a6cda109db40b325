"""Cutting ``text --ar 16:9 --no x`` into the prompt part and its parameters.

Loose syntax people really type is accepted here: em and en dashes (and the doubled ones a
Chinese keyboard types) for ``--``, a parameter typed right after the text (``一只猫，--ar 16:9``),
punctuation right after a value (``--ar 16:9,``), a dangling ``--`` at the end, and prompt text
that continues after a parameter behind ``::`` (``URL --iw 0.75 :: text :: more text``).
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
# A known name typed right after the text, as a whole word: `一只猫，--ar 16:9`, `a cat.--v 6`,
# `a cat--ar 2:1`. Not inside a URL or a word (`--v.png`, `well--known`).
_KNOWN = "|".join(sorted(map(re.escape, BY_NAME), key=len, reverse=True))
_GLUED_NAME = rf"(?:{_KNOWN})(?=\s|$|::|[.,;!?。，、；！？)](?:\s|$))"
# Dashes glued to the text turn into `--` only after punctuation or CJK text: in English an em
# dash before a word is prose (`a quiet street—no people`).
_AFTER_CJK_OR_PUNCTUATION = r"(?<=[^\w\s]|[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef])"
_DASH_RUN = rf"(?:[{_DASH}]{{1,2}}|[{_DASH}]-|-[{_DASH}])"
_DASHES = re.compile(rf"{_START}{_DASH_RUN}(?=[A-Za-z])")
_PARAMETER = re.compile(
    rf"{_START}--([A-Za-z]\S*)|(?<=\S)--({_GLUED_NAME})"
    rf"|{_AFTER_CJK_OR_PUNCTUATION}{_DASH_RUN}({_GLUED_NAME})"
)
# Prompt text resumes after a parameter at a `::`; in reference lists only at one that starts
# a word, since `--sref URL::2` weighs that reference.
_RESUME = re.compile(r"::")
_RESUME_WORD = re.compile(r"(?<!\S)::")
_REFERENCE_SLOTS = frozenset({"sref", "cref", "oref", "p", "end"})
_OPENING = ("(", "（", "「", "【")
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
    # Cutting the parameters off can leave a known name glued at the new end of the text
    # (`a cat--c--tile`): that is a parameter too, so look at the text before them again.
    while matches and (more := list(_PARAMETER.finditer(text, 0, matches[0].start()))):
        matches = more + matches
    if not matches:
        return text, [], []
    parameters = []
    resumed: list[str] = []
    for index, match in enumerate(matches):
        name, typed = _name(match[1] or match[2] or match[3])
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
    prompt = text[: matches[0].start()]
    if matches[0].lastindex != 1 and prompt.endswith(_OPENING):
        # A bracket opened right before the parameters (`a cat (--ar 16:9)`) closes after them.
        prompt = prompt[:-1].rstrip()
    return prompt, parameters, resumed


def resolve_sizes(parameters: list[Parameter]) -> list[Parameter]:
    """Midjourney V1-V3 sized images with ``--w W --h H``: there, ``--w`` is the width."""
    if not any(parameter.slot == "size_h" for parameter in parameters):
        return parameters
    return [
        dataclasses.replace(parameter, slot="size_w") if parameter.name == "w" else parameter
        for parameter in parameters
    ]
