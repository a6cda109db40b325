"""Which stored blobs are still named by the database (job inputs, references and edits, result
images).

The image store is content-addressed and shared: the same bytes sent by two commands, or a
result sent back as an image prompt, are one blob. A blob may be deleted only when nothing in
the database names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Text, cast, or_, select

from storage.db import Database
from storage.images import check_sha256
from storage.tables import images, jobs

# The job columns that name blobs besides its result images: JSON holding hashes.
NAMING_COLUMNS = (jobs.c.input_images, jobs.c.reference_images, jobs.c.edit)


def named_hashes(
    input_images: Sequence[str] | None,
    reference_images: Mapping[str, Sequence[str]] | None,
    edit: Mapping[str, Any] | None,
) -> set[str]:
    """The blobs a job's ``NAMING_COLUMNS`` name: its inputs, its references, and its edit's
    source and mask."""
    named = {str(sha) for sha in input_images or ()}
    for role in (reference_images or {}).values():
        named.update(str(sha) for sha in role or ())
    for key in ("source", "mask"):
        if (edit or {}).get(key):
            named.add(str((edit or {})[key]))
    return named


async def unreferenced(db: Database, hashes: Iterable[str]) -> list[str]:
    """The ``hashes`` no job names as an input, reference or edit and no result image is kept
    under."""
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
            # Inputs, references and edits are JSON holding hashes: a hash appears in their
            # text exactly when listed.
            named = await conn.execute(
                select(jobs.c.id)
                .where(
                    or_(
                        *(
                            cast(column, Text).contains(sha256, autoescape=True)
                            for column in NAMING_COLUMNS
                        )
                    )
                )
                .limit(1)
            )
            if named.first() is None:
                free.append(sha256)
        return free
