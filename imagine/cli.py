"""The ``imagine`` command line: argument parsing and dispatch to ``imagine.commands``.

Subcommand modules are imported lazily so ``imagine parse`` never loads torch and
``imagine bot`` never loads the worker.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from imagine.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="imagine", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML config file (or IMAGINE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="bot and worker in one process (SQLite under the data dir)")
    sub.add_parser("bot", help="the Discord bot alone")
    worker = sub.add_parser("worker", help="a GPU worker alone")
    worker.add_argument("--once", action="store_true", help="exit when the queue is empty")
    sub.add_parser("migrate", help="upgrade the database to the newest schema")
    sub.add_parser("doctor", help="check configuration, database, model and Discord settings")

    parse = sub.add_parser("parse", help="print the requests a prompt makes, as JSON")
    parse.add_argument("text", help="the /imagine prompt text")

    gen = sub.add_parser("generate", help="run the engine locally, no Discord, no database")
    gen.add_argument("text", help="the /imagine prompt text")
    gen.add_argument("--model", help="hub id, local directory or configured alias")
    gen.add_argument("--out", type=Path, default=Path("."), help="output directory")

    tiny = sub.add_parser("tiny-model", help="write a tiny random-weight SDXL for smoke tests")
    tiny.add_argument("out", type=Path, help="directory to write the model into")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument(
        "--full-size",
        action="store_true",
        help="the SDXL base architecture at its published sizes instead (random weights, ~6.5 GB)",
    )

    quota = sub.add_parser("quota", help="show or set a user's image quota")
    qsub = quota.add_subparsers(dest="quota_command", required=True, metavar="ACTION")
    qset = qsub.add_parser("set", help="set a user's own limit")
    qset.add_argument("user_id", type=int)
    qset.add_argument("--images", type=int, required=True)
    qset.add_argument("--period", choices=["day", "week", "month", "total"], required=True)
    qshow = qsub.add_parser("show", help="show a user's limit, usage and what is left")
    qshow.add_argument("user_id", type=int)
    qreset = qsub.add_parser("reset", help="clear a user's usage in the current period")
    qreset.add_argument("user_id", type=int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imagine`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load(config_file=args.config)
    except (ValidationError, ValueError) as exc:
        print(f"imagine: invalid configuration: {exc}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"imagine.commands.{args.command.replace('-', '_')}")
    try:
        return int(module.run(args, settings))
    except KeyboardInterrupt:
        return 130
