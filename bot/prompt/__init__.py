"""The prompt language: Midjourney-style ``/imagine`` text to ``GenerationRequest``s.

Pure: no discord, torch or storage I/O. ``parse`` raises ``PromptError`` whose text is the one
line shown to the user; ``render`` turns a request back into prompt text.
"""

from __future__ import annotations

from bot.prompt._aspect import NAMED_SIZES, parse_aspect, sdxl_size
from bot.prompt._errors import PromptError
from bot.prompt._help import language_help
from bot.prompt._options import DEFAULT_STEPS_PER_QUALITY, ParserOptions
from bot.prompt._parser import MAX_PROMPT_CHARS, MAX_REQUESTS, parse
from bot.prompt._render import render

__all__ = [
    "DEFAULT_STEPS_PER_QUALITY",
    "MAX_PROMPT_CHARS",
    "MAX_REQUESTS",
    "NAMED_SIZES",
    "ParserOptions",
    "PromptError",
    "language_help",
    "parse",
    "parse_aspect",
    "render",
    "sdxl_size",
]
