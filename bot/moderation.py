"""Banned words: a normaliser that sees through common evasions, and a whole-word matcher.

``normalize`` folds case, strips accents (NFKD), drops invisible format characters, turns
punctuation into spaces, collapses spacing and joins runs of single characters, so
"B.A.D", "b a d" and "bád" all read "bad". ``find_banned`` matches whole words (or phrases) of
the normalised text, and also banned words hidden inside a longer run of single letters
("a b.a.d idea"). ``find_banned_in`` checks several texts: a command and every request it
expands to, since ``a {ba}d`` only reads "a bad" after the permutation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_NON_WORD = re.compile(r"[\W_]+")


def _tokens(text: str) -> list[tuple[str, bool]]:
    """Normalised words, each flagged when it was joined from single characters."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(
        char
        for char in decomposed
        # Combining marks are accents; format characters (zero-width spaces) hide evasions.
        if not unicodedata.combining(char) and unicodedata.category(char) != "Cf"
    )
    words = _NON_WORD.sub(" ", kept.casefold()).split()
    tokens: list[tuple[str, bool]] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1:
            run.append(word)
            continue
        if len(run) > 1:
            tokens.append(("".join(run), True))
        elif run:
            tokens.append((run[0], False))
        run = []
        if word:
            tokens.append((word, False))
    return tokens


def normalize(text: str) -> str:
    """Casefolded, accent-free words separated by single spaces, spaced-out letters joined."""
    return " ".join(word for word, _ in _tokens(text))


def find_banned(text: str, words: Iterable[str]) -> str | None:
    """The first of ``words`` that ``text`` contains as a whole word after normalisation."""
    tokens = _tokens(text)
    padded = f" {' '.join(word for word, _ in tokens)} "
    runs = [word for word, joined in tokens if joined]
    for banned in words:
        needle = normalize(banned)
        if not needle:
            continue
        if f" {needle} " in padded:
            return banned
        compact = needle.replace(" ", "")
        if any(compact in run for run in runs):
            return banned
    return None


def find_banned_in(texts: Iterable[str], words: Iterable[str]) -> str | None:
    """The first of ``words`` that any of ``texts`` contains (see ``find_banned``)."""
    banned = tuple(words)
    for text in texts:
        found = find_banned(text, banned)
        if found is not None:
            return found
    return None


def banned_refusal(word: str) -> str:
    """What a user is told when their prompt contains the banned ``word``."""
    return f"Your prompt was refused: “{word}” is not allowed on this server."
