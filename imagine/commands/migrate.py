"""``imagine migrate``: upgrade the configured database to the newest schema."""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from imagine.settings import Settings
from storage.db import async_url
from storage.errors import StorageError
from storage.migrate import current_revision, head_revision, upgrade


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending migrations and say what changed."""
    url = settings.database
    try:
        shown = async_url(url).render_as_string(hide_password=True)
        before = current_revision(url)
        upgrade(url)
    except (StorageError, SQLAlchemyError, OSError) as exc:
        print(f"imagine migrate: cannot migrate the database: {exc}", file=sys.stderr)
        return 1
    head = head_revision()
    if before == head:
        print(f"{shown}: already at the newest schema ({head})")
    else:
        print(f"{shown}: upgraded from {before or 'an empty database'} to {head}")
    return 0
