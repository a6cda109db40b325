"""Permutation prompts: ``a {red, blue} bird`` expands to one text per alternative.

Groups nest and multiply. ``\\,``, ``\\{``, ``\\}`` and ``\\\\`` stand for the literal character,
everywhere in the text. The number of texts is counted before anything is expanded, so a prompt
with 2^50 combinations fails fast instead of exhausting memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.prompt._errors import PromptError

ESCAPABLE = frozenset("\\,{}")
MAX_DEPTH = 8  # deeper nesting is never meant, and recursion must stay bounded


@dataclass(frozen=True)
class _Group:
    alternatives: tuple[_Sequence, ...]


_Sequence = tuple["str | _Group", ...]


def _parse(text: str) -> _Sequence:
    stack: list[tuple[list[str | _Group], list[_Sequence]]] = []
    items: list[str | _Group] = []
    alternatives: list[_Sequence] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            items.append("".join(literal))
            literal.clear()

    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in ESCAPABLE:
            literal.append(text[i + 1])
            i += 2
            continue
        if char == "{":
            if len(stack) == MAX_DEPTH:
                raise PromptError(
                    f"permutations nest more than {MAX_DEPTH} levels deep; use fewer `{{`"
                )
            flush()
            stack.append((items, alternatives))
            items, alternatives = [], []
        elif char == "}":
            if not stack:
                raise PromptError(
                    "unbalanced `}`: it has no opening `{` (write `\\}` for a literal brace)"
                )
            flush()
            alternatives.append(tuple(items))
            group = _Group(tuple(alternatives))
            items, alternatives = stack.pop()
            items.append(group)
        elif char == "," and stack:
            flush()
            alternatives.append(tuple(items))
            items = []
        else:
            literal.append(char)
        i += 1
    if stack:
        raise PromptError(
            "unbalanced `{`: a permutation like `{red, blue}` is missing its closing `}`"
        )
    flush()
    return tuple(items)


def _count(sequence: _Sequence) -> int:
    total = 1
    for item in sequence:
        if isinstance(item, _Group):
            total *= sum(_count(alt) for alt in item.alternatives)
    return total


def _expand(sequence: _Sequence) -> list[str]:
    texts = [""]
    for item in sequence:
        if isinstance(item, str):
            texts = [text + item for text in texts]
        else:
            # Alternatives are trimmed so `{a, b}` gives "a" and "b", not " b".
            options = [opt.strip() for alt in item.alternatives for opt in _expand(alt)]
            texts = [text + option for text in texts for option in options]
    return texts


def expand(text: str, limit: int) -> list[str]:
    """All texts a permutation prompt stands for; ``PromptError`` when more than ``limit``."""
    sequence = _parse(text)
    count = _count(sequence)
    if count > limit:
        raise PromptError(
            f"this prompt makes {count:,} permutations; the limit is {limit} requests per command"
        )
    return _expand(sequence)


def escape(text: str) -> str:
    """Text that ``expand`` turns back into ``text`` unchanged, when placed outside braces."""
    # Commas are only special inside a group, so they stay readable here.
    return "".join("\\" + char if char in "\\{}" else char for char in text)
