"""The prompt language in a few lines, built from the parameter table so it never drifts."""

from __future__ import annotations

from bot.prompt._table import SPECS, Spec, Treatment

SYNTAX = "`/imagine [image URLs] text [:: weight] [--param value ...]`, parameters after the text"


def _names(spec: Spec) -> str:
    return " ".join(f"`--{name}`" for name in spec.names)


def language_help() -> str:
    """The syntax, each honoured or mapped parameter with its values (flags on one line), then
    the names that are accepted and ignored."""
    lines = [f"**Prompt:** {SYNTAX}.", "**Parameters** (name: values)"]
    told = [s for s in SPECS if s.treatment is not Treatment.NOTED]
    lines += [f"{_names(s)}: {s.range}" for s in told if s.range != "flag"]
    lines.append("**Flags** (no value): " + " ".join(_names(s) for s in told if s.range == "flag"))
    noted = ", ".join(f"`--{s.names[0]}`" for s in SPECS if s.treatment is Treatment.NOTED)
    lines.append(f"**Accepted from Midjourney prompts, then ignored with a note:** {noted}")
    return "\n".join(lines)
