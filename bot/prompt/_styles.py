"""The ``styles`` table: ``--style NAME`` to a prompt suffix and LoRAs.

An entry's value is prompt text with optional ``--lora`` parameters after it, like
``"watercolor, soft edges --lora watercolor-xl:0.8"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.prompt._errors import PromptError
from bot.prompt._params import split_parameters
from bot.prompt._values import parse_lora

MAX_LORAS = 4
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class Style:
    """What one ``--style`` name adds: text after each positive segment, and LoRAs."""

    suffix: str
    loras: tuple[tuple[str, float], ...] = ()


def parse_styles(table: Mapping[str, str]) -> dict[str, Style]:
    """The configured table by lowercase name; ``ValueError`` naming a bad entry."""
    styles: dict[str, Style] = {}
    for name, value in table.items():
        key = name.casefold()
        if _NAME.fullmatch(key) is None or key == "raw":
            raise ValueError(
                f"styles: `{name}` is not a usable style name (letters, digits, - and _; "
                "not `raw`, which is built in)"
            )
        try:
            suffix, parameters, resumed = split_parameters(value)
            if resumed or any(parameter.slot != "lora" for parameter in parameters):
                raise PromptError("only `--lora NAME[:WEIGHT]` may follow the suffix")
            loras = tuple(parse_lora(parameter) for parameter in parameters)
        except PromptError as exc:
            raise ValueError(f"styles entry `{name}`: {exc}") from None
        if len(loras) > MAX_LORAS:
            raise ValueError(f"styles entry `{name}` has {len(loras)} LoRAs; at most {MAX_LORAS}")
        if not suffix.strip() and not loras:
            raise ValueError(f"styles entry `{name}` is empty: give a prompt suffix or a LoRA")
        styles[key] = Style(" ".join(suffix.split()), loras)
    return styles
