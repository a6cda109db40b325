"""``imagine purge [--older-than 30d] [--dry-run]``: apply image retention now.

Removes the stored image files of jobs that finished before the cutoff (``--older-than``, else
``image_retention_days``; neither: job images are kept), ``.tmp-*`` files a killed process left
behind, and blobs no job refers to, in the configured image store (files or S3 objects). Rows
stay; purged jobs say when their images went.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from imagine.commands._schema import schema_is_current
from imagine.settings import Settings
from storage.db import Database
from storage.errors import ImageStoreError, StorageError
from storage.retention import PurgeReport, purge, store_contents
from storage.stores import open_image_store
from storage.weblinks import WebLogins

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 86400}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``, ``90m``, ``45s`` or a plain number of days."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"--older-than takes a number with an optional unit s, m, h, d or w "
            f"(like 30d or 12h); got {text!r}"
        )
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds <= 0:
        raise ValueError(f"--older-than must be more than 0; got {text!r}")
    return timedelta(seconds=seconds)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Purge (or with ``--dry-run`` only count) and print what was removed."""
    try:
        if args.older_than is not None:
            older_than: timedelta | None = parse_duration(args.older_than)
        elif settings.image_retention_days is not None:
            older_than = timedelta(days=settings.image_retention_days)
        else:
            older_than = None
    except ValueError as exc:
        print(f"imagine purge: {exc}", file=sys.stderr)
        return 2
    try:
        if not schema_is_current("purge", settings):
            return 1
        report = asyncio.run(_purge(settings, older_than, args.dry_run))
    except ImageStoreError as exc:
        print(f"imagine purge: {exc}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"imagine purge: {exc}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as exc:
        print(
            f"imagine purge: cannot reach the database or the image store: {exc}", file=sys.stderr
        )
        return 1
    if args.json:
        data = dataclasses.asdict(report)
        data["cutoff"] = report.cutoff.isoformat() if report.cutoff else None
        print(json.dumps(data))
    else:
        print("\n".join(report.lines()))
    return 0


async def _purge(settings: Settings, older_than: timedelta | None, dry_run: bool) -> PurgeReport:
    db = await Database.open(settings.database)
    try:
        store = await open_image_store(settings.image_store_config)
        try:
            report = await purge(
                db,
                store_contents(store),
                now=datetime.now(UTC),
                older_than=older_than,
                dry_run=dry_run,
            )
        finally:
            await store.close()
        if not dry_run:
            await WebLogins(db).forget_expired()
        return report
    finally:
        await db.close()
