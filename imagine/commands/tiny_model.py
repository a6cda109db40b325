"""``imagine tiny-model DIR [--full-size]``: write a random-weight SDXL.

Without ``--full-size`` the tiny one used for smoke tests (64 px, a fraction of a second per
grid on a CPU); with it, the SDXL base architecture at its published sizes (3.5 B parameters,
6.5 GB of fp16 safetensors, about 5.5 GB of memory and a minute or two to write) for speed and
memory measurements. Progress goes to stderr; the directory is printed on stdout.
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
    return 0
