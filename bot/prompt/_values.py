"""One parameter occurrence and the checks on its value.

The ``parse_*`` helpers turn a value into a number or raise a ``PromptError`` that names the
parameter, the value given and the allowed range. The checkers at the end validate the values
of parameters that are accepted but not honoured (``--sv 4``, ``--oref URL``): a value
Midjourney itself would refuse is refused here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.prompt._errors import PromptError

_INT = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_CODE = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?:::-?\d+(?:\.\d+)?)?")
_LORA = re.compile(r"([A-Za-z0-9][A-Za-z0-9._/-]*)(?::(\S*))?")
_URL = re.compile(r"<?https?://[^\s<>]+>?(?:::-?\d+(?:\.\d+)?)?", re.IGNORECASE)

# Checks a noted parameter's value; returns a reason that replaces the table's, or None.
Check = Callable[["Parameter"], "str | None"]


@dataclass(frozen=True)
class Parameter:
    """One ``--name value`` occurrence.

    ``name`` is the spelling in lowercase, ``slot`` what it sets (aliases share a slot),
    ``typed`` the name as the user typed it and ``value`` the value with spaces normalized.
    """

    name: str
    slot: str
    value: str
    typed: str

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    @property
    def shown(self) -> str:
        """The parameter as typed, with its value: how a note starts."""
        return f"{self.typed} {self.value}" if self.value else self.typed


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
    if not is_number(value) or not low <= float(value) <= high:
        raise PromptError(
            f"`{parameter.flag}` must be a number from {format_number(low)} to "
            f"{format_number(high)}; got `{value}`"
        )
    return float(value)


def is_number(text: str) -> bool:
    """A plain non-negative decimal (``2``, ``0.5``, ``.25``, ``2.``): no signs or exponents."""
    return _NUMBER.fullmatch(text) is not None


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


def parse_lora(parameter: Parameter) -> tuple[str, float]:
    """``name`` or ``name:weight`` (weight 0..2, 1 when omitted)."""
    value = require_value(parameter, "name:0.8")
    match = _LORA.fullmatch(value)
    if match is None:
        raise PromptError(
            f"`{parameter.flag}` takes a LoRA name with an optional weight, like "
            f"`{parameter.flag} name` or `{parameter.flag} name:0.8`; got `{value}`"
        )
    weight = match[2]
    if weight is None:
        return match[1], 1.0
    if not is_number(weight) or not 0 <= float(weight) <= 2:
        raise PromptError(
            f"the weight in `{parameter.flag} {value}` must be a number from 0 to 2; got `{weight}`"
        )
    return match[1], float(weight)


def flag() -> Check:
    """No value."""

    def check(parameter: Parameter) -> None:
        require_flag(parameter)

    return check


def whole(low: int, high: int, example: str) -> Check:
    """One whole number within ``low..high``."""

    def check(parameter: Parameter) -> None:
        parse_int(parameter, low, high, example)

    return check


def number(low: float, high: float, example: str) -> Check:
    """One decimal number within ``low..high``."""

    def check(parameter: Parameter) -> None:
        parse_number(parameter, low, high, example)

    return check


def choice(*allowed: str) -> Check:
    """One of a few words (or numbers), case-insensitive."""

    def check(parameter: Parameter) -> None:
        value = require_value(parameter, allowed[0])
        if value.lower() not in allowed:
            options = ", ".join(f"`{word}`" for word in allowed)
            raise PromptError(f"`{parameter.flag}` must be one of {options}; got `{value}`")

    return check


def image_urls(reason: str) -> Check:
    """One or more image URLs (``<...>`` and ``::weight`` allowed), noted with ``reason``."""

    def check(parameter: Parameter) -> str:
        if not parameter.value:
            raise PromptError(
                f"`{parameter.flag}` needs a value, like "
                f"`{parameter.flag} https://example.com/ref.png`"
            )
        for token in parameter.value.split():
            if _URL.fullmatch(token) is None:
                raise PromptError(f"`{parameter.flag}` takes image URLs; got `{token}`")
        return reason

    return check


def codes(reason: str) -> Check:
    """Nothing, or one or more profile codes (``--p``, ``--p abc123 def456``)."""

    def check(parameter: Parameter) -> str:
        for token in parameter.value.split():
            if _CODE.fullmatch(token) is None:
                raise PromptError(
                    f"`{parameter.flag}` takes profile codes like `{parameter.flag} abc123`, or "
                    f"nothing; got `{token}`"
                )
        return reason

    return check
