"""``imagine tiny-model DIR``: write the tiny random-weight SDXL used for smoke tests."""

from __future__ import annotations

import argparse
import sys

from imagine.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Build the tiny model into ``args.out`` and print its path."""
    from gpu_worker.tiny import write_tiny_model

    if args.out.exists() and not args.out.is_dir():
        print(f"imagine tiny-model: {args.out} exists and is not a directory", file=sys.stderr)
        return 2
    if args.out.is_dir() and any(args.out.iterdir()):
        print(
            f"imagine tiny-model: {args.out} is not empty; give a new or empty directory",
            file=sys.stderr,
        )
        return 2
    path = write_tiny_model(args.out, seed=args.seed)
    print(path)
    return 0
