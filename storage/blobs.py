"""Which stored blobs are still named by the database (job inputs, result images).

The image store is content-addressed and shared: the same bytes sent by two commands, or a
result sent back as an image prompt, are one blob. A blob may be deleted only when nothing in
the database names it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Text, cast, select

from storage.db import Database
from storage.images import check_sha256
from storage.tables import images, jobs


async def unreferenced(db: Database, hashes: Iterable[str]) -> list[str]:
    """The ``hashes`` that no job names as an input and no result image is stored under."""
    wanted = [check_sha256(sha256) for sha256 in dict.fromkeys(hashes)]
    if not wanted:
        return []
    async with db.read() as conn:
        results = await conn.execute(select(images.c.sha256).where(images.c.sha256.in_(wanted)))
        used = set(results.scalars())
        free = []
        for sha256 in wanted:
            if sha256 in used:
                continue
            # Inputs are a JSON list of hashes: a hash appears in its text exactly when listed.
            named = await conn.execute(
                select(jobs.c.id)
                .where(cast(jobs.c.input_images, Text).contains(sha256, autoescape=True))
                .limit(1)
            )
            if named.first() is None:
                free.append(sha256)
        return free
