"""Retention: remove the stored image files of old jobs, temp files and unreferenced blobs.

It works the same on either image store: files under the data dir, or objects under an S3
bucket's prefix (``store_contents``).

Rows are kept: a purged job keeps its image rows (hashes, sizes, seeds) and gets
``images_purged_at``, so its record still explains what it made, and Discord's copies of the
images stay where they were posted. A blob is removed only when no job whose images are kept
refers to it (as a result or as an input), so a blob shared with a newer job survives.
Files younger than ``grace`` are never touched: a worker or the bot may be between writing a
blob and recording it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import ColumnElement, and_, exists, or_, select, update

from storage.blobs import NAMING_COLUMNS, named_hashes
from storage.db import Database
from storage.images import FileImageStore, ImageStore
from storage.s3 import S3ImageStore, S3Object
from storage.tables import FINISHED_STATUSES, images, jobs

GRACE = timedelta(hours=1)
_BLOB = re.compile(r"([0-9a-f]{64})\.[a-z0-9]{1,8}")
TEMP_PREFIX = ".tmp-"
PAGE = 1000
DELETES_AT_ONCE = 8


@dataclass(frozen=True)
class BlobFile:
    """One file under the image store's root, or one object under its prefix."""

    name: str  # the file's path, or the object's key
    sha256: str | None  # None for temp files and files that are not blobs
    size: int
    modified: float
    temporary: bool = False  # a ``.tmp-*`` file a writer had not renamed yet


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


class StoreContents(Protocol):
    """What a purge needs of an image store: everything in it, page by page, and removal."""

    def pages(self) -> AsyncIterator[list[BlobFile]]:
        """The store's files or objects, a page at a time."""
        ...

    async def remove(self, found: Sequence[BlobFile]) -> list[BlobFile]:
        """Remove ``found``; the ones that were there to remove."""
        ...


class FileBlobs:
    """The files of a ``FileImageStore`` root, for listing and removal."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def scan(self) -> Iterator[BlobFile]:
        """Every file two levels down (``ab/cd/<file>``), blobs and temp files alike (blocking)."""
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
                        name=str(entry),
                        sha256=match[1] if match else None,
                        size=info.st_size,
                        modified=info.st_mtime,
                        temporary=entry.name.startswith(TEMP_PREFIX),
                    )

    async def pages(self) -> AsyncIterator[list[BlobFile]]:
        """``scan`` in pages, walked in a thread."""
        files = self.scan()
        while page := await asyncio.to_thread(lambda: list(itertools.islice(files, PAGE))):
            yield page

    async def remove(self, found: Sequence[BlobFile]) -> list[BlobFile]:
        """Remove the files; those already gone are left out of the answer."""
        return await asyncio.to_thread(lambda: [blob for blob in found if self._unlink(blob)])

    @staticmethod
    def _unlink(blob: BlobFile) -> bool:
        try:
            os.unlink(blob.name)
        except FileNotFoundError:
            return False
        return True


class S3Blobs:
    """The objects under an ``S3ImageStore``'s prefix, for listing and removal.

    Every object is written by one PUT, so there are no temporary objects to clear away.
    """

    def __init__(self, store: S3ImageStore, page_size: int = PAGE) -> None:
        self.store = store
        self.page_size = page_size

    async def pages(self) -> AsyncIterator[list[BlobFile]]:
        """The objects, one listing page at a time."""
        token: str | None = None
        while True:
            found, token = await self.store.objects(token, limit=self.page_size)
            yield [self._blob(item) for item in found]
            if token is None:
                return

    def _blob(self, item: S3Object) -> BlobFile:
        # Blobs sit where the file store puts files: PREFIX/ab/cd/<sha256><suffix>.
        parts = item.key[len(self.store.location.prefix) :].split("/")
        match = _BLOB.fullmatch(parts[-1]) if len(parts) == 3 else None
        return BlobFile(
            name=item.key,
            sha256=match[1] if match else None,
            size=item.size,
            modified=item.modified,
        )

    async def remove(self, found: Sequence[BlobFile]) -> list[BlobFile]:
        """Delete the objects, a few requests at a time (S3 does not say which were there)."""
        slots = asyncio.Semaphore(DELETES_AT_ONCE)

        async def delete(blob: BlobFile) -> None:
            async with slots:
                await self.store.delete_key(blob.name)

        await asyncio.gather(*(delete(blob) for blob in found))
        return list(found)


def store_contents(store: ImageStore) -> StoreContents:
    """The purgeable contents of the configured image store."""
    if isinstance(store, FileImageStore):
        return FileBlobs(store.root)
    if isinstance(store, S3ImageStore):
        return S3Blobs(store)
    raise TypeError(f"retention cannot list an image store of type {type(store).__name__}")


async def _kept_hashes(db: Database, purged: set[int]) -> set[str]:
    """Hashes referenced by jobs whose images are kept (results, inputs, references, edits)."""
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
            select(*NAMING_COLUMNS).where(
                kept_job, or_(*(column.is_not(None) for column in NAMING_COLUMNS))
            )
        )
        for listed, references, edit in inputs:
            hashes.update(named_hashes(listed, references, edit))
    return hashes


async def old_jobs(db: Database, cutoff: datetime) -> list[int]:
    """Finished jobs older than ``cutoff`` still having images, inputs, references or an edit
    on record."""
    has_images = exists().where(images.c.job_id == jobs.c.id).correlate(jobs)
    async with db.read() as conn:
        rows = await conn.execute(
            select(jobs.c.id, has_images.label("has_images"), *NAMING_COLUMNS)
            .where(
                jobs.c.status.in_(FINISHED_STATUSES),
                jobs.c.finished_at < cutoff,
                jobs.c.images_purged_at.is_(None),
            )
            .order_by(jobs.c.id)
        )
        return [job_id for job_id, stored, *named in rows if stored or any(named)]


async def purge(
    db: Database,
    blobs: StoreContents,
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
    kinds: Counter[str] = Counter()
    freed = 0
    async for page in blobs.pages():
        doomed: dict[str, str] = {}
        for blob in page:
            if blob.modified >= settled:
                continue
            if blob.temporary:
                doomed[blob.name] = "temp"
            elif blob.sha256 is not None and blob.sha256 not in kept:
                doomed[blob.name] = "job" if blob.sha256 in of_purged else "orphan"
        chosen = [blob for blob in page if blob.name in doomed]
        gone = chosen if dry_run else await blobs.remove(chosen)
        kinds.update(doomed[blob.name] for blob in gone)
        freed += sum(blob.size for blob in gone)
    return PurgeReport(
        dry_run=dry_run,
        cutoff=cutoff,
        jobs=len(purging),
        job_files=kinds["job"],
        temp_files=kinds["temp"],
        orphans=kinds["orphan"],
        bytes_freed=freed,
    )
