"""``imagine tiny-model DIR [--extras | --cascade | --full-size]``: write a random-weight model.

Without a flag: the tiny SDXL used for smoke tests (64 px, a fraction of a second per grid).

``--extras`` also writes tiny random versions of every optional component under ``DIR/extras``
and ``DIR/extras.toml`` wiring them (``IMAGINE_CONFIG=DIR/extras.toml imagine run`` serves
``--turbo``, ``--draft``, ``--lora tiny-style``, ``--control canny|depth``, IP-Adapter image
prompts and Chinese prompts with no download); its path is printed on a second line.
``--cascade`` writes a tiny random Stable Cascade instead (``gpu_worker.tiny_cascade``).
``--full-size`` writes the SDXL base architecture at its published sizes instead (3.5 B
parameters, 6.5 GB of fp16 safetensors, about 5.5 GB of memory and a minute or two to write),
for speed and memory measurements; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

from imagine.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Build the model into ``args.out`` and print its path."""
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
    if getattr(args, "full_size", False):
        from gpu_worker.fullsize import write_sdxl

        def progress(message: str) -> None:
            print(f"imagine tiny-model: {message}", file=sys.stderr, flush=True)

        import torch

        # Initialising 3.5 B weights is quicker on a GPU (the random values differ from a CPU
        # build with the same seed; shapes, dtypes and files are the same).
        device = "cuda" if torch.cuda.is_available() else "cpu"
        path = write_sdxl(args.out, seed=args.seed, device=device, progress=progress)
    else:
        path = write_tiny_model(args.out, seed=args.seed)
    print(path)
    if args.extras:
        from gpu_worker.tiny_extras import write_extras

        print(write_extras(path))
    return 0
