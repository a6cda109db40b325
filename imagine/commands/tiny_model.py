"""``imagine tiny-model DIR [--extras]``: write the tiny random-weight SDXL used for smoke tests.

``--extras`` also writes tiny random versions of every optional component under ``DIR/extras``
and ``DIR/extras.toml`` wiring them (``IMAGINE_CONFIG=DIR/extras.toml imagine run`` serves
``--turbo``, ``--draft``, ``--lora tiny-style``, ``--control canny|depth``, IP-Adapter image
prompts and Chinese prompts with no download); its path is printed on a second line.
``--cascade`` writes a tiny random Stable Cascade instead (``gpu_worker.tiny_cascade``).
"""

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
    if args.cascade:
        from gpu_worker.tiny_cascade import write_tiny_cascade

        print(write_tiny_cascade(args.out, seed=args.seed))
        return 0
    path = write_tiny_model(args.out, seed=args.seed)
    print(path)
    if args.extras:
        from gpu_worker.tiny_extras import write_extras

        print(write_extras(path))
    return 0
