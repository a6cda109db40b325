"""The check the database commands make before touching the database."""

from __future__ import annotations

import sys

from imagine.settings import Settings
from storage.migrate import current_revision, head_revision


def schema_is_current(command: str, settings: Settings) -> bool:
    """Whether the database is migrated to the newest revision; if not, say so on stderr
    (``imagine COMMAND: ...``). Raises what reaching the database raises."""
    if current_revision(settings.database) == head_revision():
        return True
    print(
        f"imagine {command}: the database schema is not up to date; run `imagine migrate`",
        file=sys.stderr,
    )
    return False
