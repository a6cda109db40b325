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

DESCRIPTION = (
    "Midjourney-style image generation in Discord, on SDXL: run the bot and GPU workers, "
    "manage quotas, and try prompts and models locally."
)
EPILOG = (
    "Start with `imagine run` (bot and worker in one process; needs IMAGINE_DISCORD_TOKEN). "
    "Settings come from IMAGINE_* environment variables or a TOML file. "
    "`imagine COMMAND --help` shows a command's options."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="imagine", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--config", type=Path, help="TOML config file (or IMAGINE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="bot and worker in one process (SQLite under the data dir)")
    sub.add_parser("bot", help="the Discord bot alone")
    worker = sub.add_parser("worker", help="a GPU worker alone")
    worker.add_argument("--once", action="store_true", help="exit when the queue is empty")
    worker.add_argument(
        "--drain",
        action="store_true",
        help="ask the workers running here to finish their current job and exit; wait for them",
    )
    worker.add_argument(
        "--timeout", type=float, default=600.0, help="with --drain: seconds to wait (600)"
    )
    sub.add_parser("migrate", help="upgrade the database to the newest schema")
    sub.add_parser("doctor", help="check configuration, database, model and Discord settings")

    parse = sub.add_parser("parse", help="print the requests a prompt makes, as JSON")
    parse.add_argument("text", help="the /imagine prompt text")

    gen = sub.add_parser("generate", help="run the engine locally, no Discord, no database")
    gen.add_argument("text", help="the /imagine prompt text")
    gen.add_argument("--model", help="hub id, local directory or configured alias")
    gen.add_argument("--out", type=Path, default=Path("."), help="output directory")
    gen.add_argument(
        "--image",
        type=Path,
        action="append",
        default=[],
        help="a local image, as the command's attachment: an image prompt or the --control source",
    )

    tiny = sub.add_parser("tiny-model", help="write a tiny random-weight SDXL for smoke tests")
    tiny.add_argument("out", type=Path, help="directory to write the model into")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument(
        "--extras",
        action="store_true",
        help="also write tiny turbo/draft profiles, a LoRA, ControlNets, an IP-Adapter, a "
        "zh->en translator and DIR/extras.toml wiring them",
    )
    tiny.add_argument(
        "--cascade",
        action="store_true",
        help="write a tiny random-weight Stable Cascade (prior, decoder, Paella VQ) instead",
    )
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

    jobs = sub.add_parser("jobs", help="list stored jobs or show one's whole record")
    jsub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    jlist = jsub.add_parser("list", help="the newest jobs first")
    jlist.add_argument("--user", type=int, help="only this Discord user's jobs")
    jlist.add_argument("--status", help="queued, running, succeeded, failed or cancelled")
    jlist.add_argument("--kind", help="imagine, variation, upscale or reroll")
    jlist.add_argument("--limit", type=int, default=50, help="at most this many (1-500)")
    jlist.add_argument("--json", action="store_true", help="print a JSON array")
    jshow = jsub.add_parser("show", help="one job: prompt, parameters, timings, ledger, images")
    jshow.add_argument("job_id", type=int)
    jshow.add_argument("--json", action="store_true", help="print a JSON object")

    replay = sub.add_parser("replay", help="render a stored job again and compare its images")
    replay.add_argument("job_id", type=int)
    replay.add_argument("--out", type=Path, help="also write the replayed images here")

    purge = sub.add_parser("purge", help="remove old jobs' image files, temp files, orphans")
    purge.add_argument(
        "--older-than",
        help="jobs finished longer ago than this (30d, 12h, 2w; default: image_retention_days)",
    )
    purge.add_argument("--dry-run", action="store_true", help="count only, remove nothing")
    purge.add_argument("--json", action="store_true", help="print the report as JSON")

    link = sub.add_parser("admin-link", help="print a one-time login link to the dashboard")
    link.add_argument("--user", type=int, help="record changes as this Discord user id")
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
