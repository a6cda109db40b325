"""``imagine parse "<text>"``: print the requests a prompt makes, as a JSON array."""

from __future__ import annotations

import argparse
import json
import sys

from bot.prompt import ParserOptions, PromptError, parse
from imagine.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the parsed requests (exit 0) or one error line on stderr (exit 2)."""
    try:
        options = ParserOptions.from_settings(settings)
    except ValueError as exc:
        print(f"imagine: invalid configuration: {exc}", file=sys.stderr)
        return 2
    try:
        requests = parse(args.text, options=options)
    except PromptError as exc:
        # The same line the bot shows as its ephemeral reply.
        print(exc, file=sys.stderr)
        return 2
    print(json.dumps([request.to_dict() for request in requests], indent=2))
    return 0
