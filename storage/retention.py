"""Retention: remove the stored image files of old jobs, temp files and unreferenced blobs.

Rows are kept: a purged job keeps its image rows (hashes, sizes, seeds) and gets
``images_purged_at``, so its record still explains what it made, and Discord's copies of the
images stay where they were posted. A blob is removed only when no job whose images are kept
refers to it (as a result or as an input), so a blob shared with a newer job survives.
Files younger than ``grace`` are never touched: a worker or the bot may be between writing a
blob and recording it.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, and_, exists, or_, select, update

from storage.db import Database
from storage.tables import FINISHED_STATUSES, images, jobs

GRACE = timedelta(hours=1)
_BLOB = re.compile(r"([0-9a-f]{64})\.[a-z0-9]{1,8}")
TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class BlobFile:
    """One file under the image store's root."""

    path: Path
    sha256: str | None  # None for temp files and files that are not blobs
    size: int
    modified: float


@dataclass(frozen=True)
class PurgeReport:
    """What a purge removed (or, in a dry run, would remove)."""

    dry_run: bool
    cutoff: datetime | None
    jobs: int
    job_files: int
    temp_files: int
    orphans: int
    bytes_freed: int

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        verb = "would remove" if self.dry_run else "removed"
        if self.cutoff is None:
            first = "job images: kept (no --older-than and no image_retention_days)"
        else:
            first = (
                f"images of {self.jobs} job{'s' if self.jobs != 1 else ''} finished before "
                f"{self.cutoff:%Y-%m-%d %H:%M} UTC: {verb} {self.job_files} files"
            )
        return [
            first,
            f"temporary files left by stopped processes: {verb} {self.temp_files}",
            f"blobs no job refers to: {verb} {self.orphans}",
            f"space freed: {self.bytes_freed / 1e6:.1f} MB"
            + (" (dry run)" if self.dry_run else ""),
        ]


class FileBlobs:
    """The files of a ``FileImageStore`` root, for listing and removal (blocking calls)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def scan(self) -> Iterator[BlobFile]:
        """Every file two levels down (``ab/cd/<file>``), blobs and temp files alike."""
        if not self.root.is_dir():
            return
        for first in sorted(self.root.iterdir()):
            if not first.is_dir():
                continue
            for second in sorted(first.iterdir()):
                if not second.is_dir():
                    continue
                for entry in sorted(second.iterdir()):
                    try:
                        info = entry.stat()
                    except FileNotFoundError:
                        continue  # removed meanwhile (a finished temp file became its blob)
                    if not entry.is_file():
                        continue
                    match = _BLOB.fullmatch(entry.name)
                    yield BlobFile(
                        path=entry,
                        sha256=match[1] if match else None,
                        size=info.st_size,
                        modified=info.st_mtime,
                    )

    def delete(self, blob: BlobFile) -> bool:
        """Remove one file; False when it was already gone."""
        try:
            os.unlink(blob.path)
        except FileNotFoundError:
            return False
        return True


async def _kept_hashes(db: Database, purged: set[int]) -> set[str]:
    """Hashes referenced by jobs whose images are kept (results, inputs and references)."""
    kept_job: ColumnElement[bool] = jobs.c.images_purged_at.is_(None)
    if purged:
        kept_job = and_(kept_job, jobs.c.id.not_in(purged))
    async with db.read() as conn:
        results = await conn.execute(
            select(images.c.sha256)
            .select_from(images.join(jobs, images.c.job_id == jobs.c.id))
            .where(kept_job)
            .distinct()
        )
        hashes = set(results.scalars())
        inputs = await conn.execute(
            select(jobs.c.input_images, jobs.c.reference_images).where(
                kept_job,
                or_(jobs.c.input_images.is_not(None), jobs.c.reference_images.is_not(None)),
            )
        )
        for listed, references in inputs:
            hashes.update(str(sha) for sha in listed or ())
            for role in (references or {}).values():
                hashes.update(str(sha) for sha in role or ())
    return hashes


async def old_jobs(db: Database, cutoff: datetime) -> list[int]:
    """Finished jobs older than ``cutoff`` still having images, inputs or references on record."""
    has_images = exists().where(images.c.job_id == jobs.c.id).correlate(jobs)
    async with db.read() as conn:
        rows = await conn.execute(
            select(
                jobs.c.id,
                jobs.c.input_images,
                jobs.c.reference_images,
                has_images.label("has_images"),
            )
            .where(
                jobs.c.status.in_(FINISHED_STATUSES),
                jobs.c.finished_at < cutoff,
                jobs.c.images_purged_at.is_(None),
            )
            .order_by(jobs.c.id)
        )
        return [
            job_id for job_id, inputs, references, stored in rows if stored or inputs or references
        ]


async def purge(
    db: Database,
    blobs: FileBlobs,
    *,
    now: datetime,
    older_than: timedelta | None,
    dry_run: bool = False,
    grace: timedelta = GRACE,
) -> PurgeReport:
    """Purge images of jobs finished more than ``older_than`` ago, temp files and orphans."""

    cutoff = now - older_than if older_than is not None else None
    purging = set(await old_jobs(db, cutoff)) if cutoff is not None else set()
    if purging and not dry_run:
        async with db.write() as tx:
            await tx.conn.execute(
                update(jobs)
                .where(jobs.c.id.in_(purging), jobs.c.images_purged_at.is_(None))
                .values(images_purged_at=now)
            )
    # Once the rows say "purged", removing the files can be interrupted at any point: the next
    # purge finds them unreferenced and finishes the work.
    kept = await _kept_hashes(db, purging)
    async with db.read() as conn:
        of_purged = set(
            (
                await conn.execute(
                    select(images.c.sha256)
                    .select_from(images.join(jobs, images.c.job_id == jobs.c.id))
                    .where(or_(jobs.c.images_purged_at.is_not(None), jobs.c.id.in_(purging)))
                )
            ).scalars()
        )
    settled = (now - grace).timestamp()

    def sweep() -> tuple[int, int, int, int]:
        job_files = temp_files = orphans = freed = 0
        for blob in blobs.scan():
            if blob.modified >= settled:
                continue
            if blob.path.name.startswith(TEMP_PREFIX):
                kind = "temp"
            elif blob.sha256 is None or blob.sha256 in kept:
                continue
            else:
                kind = "job" if blob.sha256 in of_purged else "orphan"
            if not dry_run and not blobs.delete(blob):
                continue
            freed += blob.size
            if kind == "temp":
                temp_files += 1
            elif kind == "job":
                job_files += 1
            else:
                orphans += 1
        return job_files, temp_files, orphans, freed

    job_files, temp_files, orphans, freed = await asyncio.to_thread(sweep)
    return PurgeReport(
        dry_run=dry_run,
        cutoff=cutoff,
        jobs=len(purging),
        job_files=job_files,
        temp_files=temp_files,
        orphans=orphans,
        bytes_freed=freed,
    )
