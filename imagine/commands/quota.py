"""``imagine quota set|show|reset USER_ID``: the same quota logic as ``/admin quota``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy.exc import SQLAlchemyError

from imagine.commands._schema import schema_is_current
from imagine.settings import Settings
from storage.audit import OPERATOR, Actor
from storage.bundle import open_storage
from storage.errors import DatabaseUnavailable, StorageError
from storage.quotas import QuotaStatus


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one quota action and print the user's quota afterwards."""
    try:
        if not schema_is_current("quota", settings):
            return 1
        status = asyncio.run(_act(args, settings))
    except DatabaseUnavailable as exc:
        print(f"imagine quota: cannot reach the database: {exc.detail}", file=sys.stderr)
        return 1
    except StorageError as exc:
        print(f"imagine quota: {exc}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as exc:
        print(f"imagine quota: cannot reach the database: {exc}", file=sys.stderr)
        return 1
    print("\n".join(status.lines()))
    return 0


async def _act(args: argparse.Namespace, settings: Settings) -> QuotaStatus:
    async with await open_storage(settings.storage()) as storage:
        actor = Actor(OPERATOR, "cli")
        if args.quota_command == "set":
            return await storage.quotas.set_limit(
                args.user_id, args.images, args.period, actor=actor
            )
        if args.quota_command == "reset":
            return await storage.quotas.reset(args.user_id, actor=actor)
        return await storage.quotas.status(args.user_id)
