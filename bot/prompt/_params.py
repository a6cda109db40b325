"""Parameter names, aliases and value checks (DESIGN section 4).

``split_parameters`` cuts ``text --ar 16:9 --no x`` into the prompt part and ``(spelling, value)``
pairs; the ``parse_*`` helpers turn a value into a number or raise a ``PromptError`` that names
the parameter, the value given and the allowed range.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from bot.prompt._errors import PromptError

# Spelling -> slot. Spellings sharing a slot are aliases and may appear only once together.
SPELLINGS: dict[str, str] = {
    "ar": "aspect",
    "aspect": "aspect",
    "seed": "seed",
    "no": "no",
    "c": "chaos",
    "chaos": "chaos",
    "s": "stylize",
    "stylize": "stylize",
    "q": "quality",
    "quality": "quality",
    "steps": "steps",
    "stop": "stop",
    "tile": "tile",
    "raw": "raw",
    "style": "raw",
    "w": "weird",
    "weird": "weird",
    "iw": "iw",
    "r": "repeat",
    "repeat": "repeat",
    "v": "model",
    "version": "model",
    "niji": "model",
    "model": "model",
    "turbo": "mode",
    "fast": "mode",
    "relax": "mode",
}

# Midjourney parameters this server recognises but cannot honour.
UNSUPPORTED = frozenset(
    {
        "sref", "cref", "oref", "sw", "cw", "ow", "sv", "video", "motion", "loop", "end",
        "p", "personalize", "profile", "exp", "draft", "bs", "hd", "test", "testp",
        "creative", "uplight", "upbeta", "upanime", "stealth", "public", "visibility",
    }
)  # fmt: skip

# Words people type for a parameter that difflib cannot relate to its short name.
_SYNONYMS = {
    "ratio": "ar", "aspectratio": "ar", "aspect-ratio": "ar", "size": "ar",
    "resolution": "ar", "negative": "no", "neg": "no", "negative-prompt": "no",
    "exclude": "no", "without": "no", "cfg": "stylize", "guidance": "stylize",
    "step": "steps", "variety": "chaos", "n": "repeat", "count": "repeat",
    "imageweight": "iw", "image-weight": "iw", "weirdness": "weird", "tiling": "tile",
    "tiled": "tile", "seamless": "tile",
}  # fmt: skip

# A parameter starts a word, or directly follows a `::` weight marker (`a cat::--ar 2:1`).
_DASHES = re.compile(r"(?:(?<!\S)|(?<=::))[\u2014\u2013]-?(?=[A-Za-z])")
_PARAMETER = re.compile(r"(?:(?<!\S)|(?<=::))--([A-Za-z]\S*)")
_INT = re.compile(r"\d+")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


@dataclass(frozen=True)
class Parameter:
    """One ``--name value`` occurrence: ``spelling`` as typed (lowercase), ``value`` stripped."""

    spelling: str
    value: str

    @property
    def slot(self) -> str:
        return SPELLINGS[self.spelling]

    @property
    def flag(self) -> str:
        return f"--{self.spelling}"


def normalize_dashes(text: str) -> str:
    """Phones turn ``--`` into an em or en dash; turn it back where a parameter starts."""
    return _DASHES.sub("--", text)


def _unknown(name: str) -> PromptError:
    known = [*SPELLINGS, *sorted(UNSUPPORTED)]
    suggestion = _SYNONYMS.get(name)
    if suggestion is None:
        prefixes = [known_name for known_name in SPELLINGS if name.startswith(known_name)]
        longest = max(prefixes, key=len, default=None)
        if longest is not None and not name[len(longest)].isalpha():
            return PromptError(
                f"`--{name}` is not a known parameter; did you mean "
                f"`--{longest} {name[len(longest) :]}`?"
            )
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        suggestion = close[0] if close else None
    if suggestion is None:
        return PromptError(f"`--{name}` is not a known parameter; see the list with /help")
    return PromptError(f"`--{name}` is not a known parameter; did you mean `--{suggestion}`?")


def split_parameters(text: str) -> tuple[str, list[Parameter]]:
    """The prompt before the first ``--name`` and every parameter after it, in order."""
    matches = list(_PARAMETER.finditer(text))
    if not matches:
        return text, []
    parameters = []
    for index, match in enumerate(matches):
        name = match[1].lower()
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        value = " ".join(text[match.end() : end].split())
        if name in UNSUPPORTED:
            raise PromptError(f"`--{name}` is not supported on this server")
        if name not in SPELLINGS:
            raise _unknown(name)
        parameters.append(Parameter(name, value))
    return text[: matches[0].start()], parameters


def require_value(parameter: Parameter, example: str) -> str:
    """The parameter's single value; errors for a missing value or extra words."""
    if not parameter.value:
        raise PromptError(f"`{parameter.flag}` needs a value, like `{parameter.flag} {example}`")
    if " " in parameter.value:
        raise PromptError(
            f"`{parameter.flag}` takes one value; got `{parameter.value}` "
            "(the prompt text goes before the parameters)"
        )
    return parameter.value


def require_flag(parameter: Parameter) -> None:
    """Flags take no value; words after one are most likely misplaced prompt text."""
    if parameter.value:
        raise PromptError(
            f"`{parameter.flag}` takes no value; got `{parameter.value}` "
            "(the prompt text goes before the parameters)"
        )


def parse_int(parameter: Parameter, low: int, high: int, example: str) -> int:
    """A whole number within ``low..high``."""
    value = require_value(parameter, example)
    if _INT.fullmatch(value) is None or not low <= int(value) <= high:
        raise PromptError(
            f"`{parameter.flag}` must be a whole number from {low} to {high}; got `{value}`"
        )
    return int(value)


def parse_number(parameter: Parameter, low: float, high: float, example: str) -> float:
    """A decimal number within ``low..high``."""
    value = require_value(parameter, example)
    if _NUMBER.fullmatch(value) is None or not low <= float(value) <= high:
        raise PromptError(
            f"`{parameter.flag}` must be a number from {format_number(low)} to "
            f"{format_number(high)}; got `{value}`"
        )
    return float(value)


def format_number(value: float) -> str:
    """``2.0`` -> ``2``, ``0.25`` -> ``0.25``: the shortest text that parses back exactly."""
    if value.is_integer():
        return str(int(value))
    text = repr(value)
    if "e" in text:
        # Positional notation so the text parses back without an exponent.
        text = format(value, ".20f").rstrip("0")
        if float(text) != value:
            text = format(value, ".400f").rstrip("0")
    return text
