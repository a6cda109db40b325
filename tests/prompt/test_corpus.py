"""Prompts as people share them (``corpus/shared_prompts.txt``) on the default configuration."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.prompt import MAX_PROMPT_CHARS, ParserOptions, PromptError, parse
from bot.prompt._table import BY_NAME

CORPUS = Path(__file__).parent / "corpus" / "shared_prompts.txt"
# A parameter left in the text: any `--name` starting a word, or a known name glued to the text.
_KNOWN = "|".join(sorted(map(re.escape, BY_NAME), key=len, reverse=True))
_LEFTOVER = re.compile(rf"(?<!\S)--[A-Za-z]|--(?:{_KNOWN})(?![A-Za-z])")


def _prompts() -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


PROMPTS = _prompts()
ACCEPTED = [line for line in PROMPTS if not line.startswith("! ")]
REFUSED = [line.removeprefix("! ") for line in PROMPTS if line.startswith("! ")]


def test_the_corpus_has_the_styles_people_use() -> None:
    assert len(PROMPTS) >= 150
    text = "\n".join(PROMPTS)
    for needle in (
        "--v 7",
        "--niji 6",
        "::-",
        "{",
        "<https://",
        "\u2014ar",
        "\u2014\u2014ar",
        "\uff0c--",
    ):
        assert needle in text, needle
    assert re.search(r"[\u4e00-\u9fff]", text) and re.search(r"[\u3040-\u30ff]", text)
    assert re.search(r"[\U0001f300-\U0001faff]", text)
    assert max(len(line) for line in PROMPTS) > MAX_PROMPT_CHARS - 150


@pytest.mark.parametrize("text", ACCEPTED)
def test_shared_prompt_parses(text: str) -> None:
    requests = parse(text, options=ParserOptions())
    assert requests
    for request in requests:
        # No parameter was swallowed into the text that gets painted.
        assert not _LEFTOVER.search(request.prompt), request.prompt
        assert all(not _LEFTOVER.search(segment) for segment, _ in request.segments)
        assert all(note.startswith("--") for note in request.notes), request.notes


@pytest.mark.parametrize("text", REFUSED)
def test_what_midjourney_refuses_is_refused_naming_the_parameter(text: str) -> None:
    with pytest.raises(PromptError) as caught:
        parse(text, options=ParserOptions())
    assert re.search(r"`--[a-z]+", str(caught.value)), str(caught.value)
