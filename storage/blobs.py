"""Which stored blobs are still named by the database (job inputs and references, result images).

The image store is content-addressed and shared: the same bytes sent by two commands, or a
result sent back as an image prompt, are one blob. A blob may be deleted only when nothing in
the database names it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Text, cast, or_, select

from storage.db import Database
from storage.images import check_sha256
from storage.tables import images, jobs


async def unreferenced(db: Database, hashes: Iterable[str]) -> list[str]:
    """The ``hashes`` no job names as an input or reference and no result image is kept under."""
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
            # Inputs and references are JSON holding hashes: a hash appears in their text
            # exactly when listed.
            named = await conn.execute(
                select(jobs.c.id)
                .where(
                    or_(
                        cast(jobs.c.input_images, Text).contains(sha256, autoescape=True),
                        cast(jobs.c.reference_images, Text).contains(sha256, autoescape=True),
                    )
                )
                .limit(1)
            )
            if named.first() is None:
                free.append(sha256)
        return free
