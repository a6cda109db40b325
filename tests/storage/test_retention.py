"""Retention: old jobs' image files, stale temp files and orphaned blobs go; rows stay."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from storage.contract import GenerationRequest, JobKind, JobSpec, StoredImage
from storage.db import Database
from storage.edits import region
from storage.images import FileImageStore, ImageStore
from storage.queue import JobQueue
from storage.retention import FileBlobs, purge
from storage.tables import images
from tests.plugins.database import FakeClock
from tests.storage.test_cli import _imagine

DAY = 86400


def _age(path: Path, seconds: float) -> None:
    """Make a file look ``seconds`` old."""
    then = time.time() - seconds
    os.utime(path, (then, then))


async def _finished(
    queue: JobQueue, store: ImageStore, blobs: list[bytes], *, inputs: tuple[str, ...] = ()
) -> int:
    request = GenerationRequest(prompt="kept for the record", seed=1)
    (job,) = await queue.enqueue(
        5, [JobSpec(JobKind.IMAGINE, request, cost=4, input_images=inputs)], interaction_id=None
    )
    (claimed,) = await queue.claim("w")
    stored = []
    for index, data in enumerate(blobs):
        blob = await store.put(data)
        stored.append(StoredImage(index, blob.sha256, 8, 8, 1, blob.size, blob.path))
    await queue.finish(claimed.id, "w", stored, gpu_seconds=0.1)
    return job.id


@dataclass(frozen=True)
class Scenario:
    """An old job, a new one sharing a result and an input with it, orphans and temp files."""

    old: int
    new: int
    orphan_old: str
    orphan_new: str
    shared_input: str
    stale_tmp: str
    fresh_tmp: str


async def _scenario(
    db: Database, queue: JobQueue, store: FileImageStore, clock: FakeClock
) -> Scenario:
    clock.current -= timedelta(days=40)  # the old job ran 40 days ago; the clock ends at now
    shared_input = await store.put(b"an input image used again later")
    old = await _finished(
        queue, store, [b"old only", b"old and new"], inputs=(shared_input.sha256,)
    )
    clock.advance(40 * DAY)
    new = await _finished(queue, store, [b"old and new"], inputs=(shared_input.sha256,))
    # Files written 40 days ago (the old job's) are old on disk too; the new job's are fresh.
    for blob in ("old only", "old and new"):
        path = store.path(_sha(blob))
        assert path is not None
        _age(path, 40 * DAY)
    orphan_old = await store.put(b"a refused command's image")
    orphan_new = await store.put(b"an image a worker is about to record")
    path_old = store.path(orphan_old.sha256)
    assert path_old is not None
    _age(path_old, 2 * DAY)
    shard = Path(store.path(orphan_old.sha256) or "").parent
    stale_tmp = shard / ".tmp-killedwriter.png"
    stale_tmp.write_bytes(b"half a png")
    _age(stale_tmp, 3 * 3600)
    fresh_tmp = shard / ".tmp-writing-now.png"
    fresh_tmp.write_bytes(b"being written")
    return Scenario(
        old=old,
        new=new,
        orphan_old=orphan_old.sha256,
        orphan_new=orphan_new.sha256,
        shared_input=shared_input.sha256,
        stale_tmp=str(stale_tmp),
        fresh_tmp=str(fresh_tmp),
    )


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


async def test_purge_removes_old_job_files_temp_files_and_orphans_and_keeps_rows(
    db: Database, queue: JobQueue, image_store: FileImageStore, clock: FakeClock
) -> None:
    s = await _scenario(db, queue, image_store, clock)
    blobs = FileBlobs(image_store.root)
    before = sorted(b.name for b in blobs.scan())

    dry = await purge(db, blobs, now=clock(), older_than=timedelta(days=30), dry_run=True)
    assert (dry.jobs, dry.job_files, dry.temp_files, dry.orphans) == (1, 1, 1, 1)
    assert sorted(b.name for b in blobs.scan()) == before
    assert (await queue.get(s.old)).images_purged_at is None

    done = await purge(db, blobs, now=clock(), older_than=timedelta(days=30))
    assert (done.jobs, done.job_files, done.temp_files, done.orphans) == (1, 1, 1, 1)
    assert done.bytes_freed == len(b"old only") + len(b"half a png") + len(
        b"a refused command's image"
    )
    assert image_store.path(_sha("old only")) is None
    assert image_store.path(_sha("old and new")) is not None  # the new job still shows it
    assert image_store.path(s.shared_input) is not None  # the new job's input
    assert image_store.path(s.orphan_old) is None
    assert image_store.path(s.orphan_new) is not None  # younger than the grace period
    left = {Path(b.name).name for b in await asyncio.to_thread(lambda: list(blobs.scan()))}
    assert ".tmp-killedwriter.png" not in left and ".tmp-writing-now.png" in left

    old = await queue.get(s.old)
    assert old.images_purged_at == clock()
    assert (await queue.get(s.new)).images_purged_at is None
    async with db.read() as conn:
        rows = (await conn.execute(select(func.count()).select_from(images))).scalar_one()
    assert rows == 3  # every image row is kept

    again = await purge(db, blobs, now=clock(), older_than=timedelta(days=30))
    assert (again.jobs, again.job_files, again.temp_files, again.orphans) == (0, 0, 0, 0)


async def test_without_a_cutoff_only_temp_files_and_orphans_go(
    db: Database, queue: JobQueue, image_store: FileImageStore, clock: FakeClock
) -> None:
    s = await _scenario(db, queue, image_store, clock)
    report = await purge(db, FileBlobs(image_store.root), now=clock(), older_than=None)
    assert (report.cutoff, report.jobs, report.temp_files, report.orphans) == (None, 0, 1, 1)
    assert image_store.path(_sha("old only")) is not None
    assert report.lines()[0] == "job images: kept (no --older-than and no image_retention_days)"
    assert (await queue.get(s.old)).images_purged_at is None


async def test_purge_command_line(
    database_environ: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    store = FileImageStore(Path(database_environ["IMAGINE_DATA_DIR"]) / "images")
    db = await Database.open(database_url)
    try:
        clock = FakeClock()
        queue = JobQueue(db, clock=clock)
        old = await _finished(queue, store, [b"from long ago"])
    finally:
        await db.close()
    path = store.path(_sha("from long ago"))
    assert path is not None
    _age(path, 90 * DAY)
    # The job finished "now" by the database: not older than 30 days, so nothing goes.
    kept = await asyncio.to_thread(
        _imagine, "purge", "--older-than", "30d", "--dry-run", environ=database_environ
    )
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.splitlines()[0].startswith("images of 0 jobs finished before ")
    assert "(dry run)" in kept.stdout
    everything = await asyncio.to_thread(
        _imagine, "purge", "--older-than", "0.5s", "--json", environ=database_environ
    )
    assert everything.returncode == 0, everything.stderr
    assert '"jobs": 1' in everything.stdout and '"job_files": 1' in everything.stdout
    assert store.path(_sha("from long ago")) is None
    shown = await asyncio.to_thread(
        _imagine, "jobs", "show", str(old), "--json", environ=database_environ
    )
    assert '"images_purged_at": "' in shown.stdout

    bad = await asyncio.to_thread(
        _imagine, "purge", "--older-than", "thirty days", environ=database_environ
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "imagine purge: --older-than takes a number with an optional unit s, m, h, d or w "
        "(like 30d or 12h); got 'thirty days'"
    )


async def test_a_queued_region_edit_keeps_its_mask_until_its_job_is_purged(
    db: Database, queue: JobQueue, image_store: FileImageStore, clock: FakeClock
) -> None:
    mask = await image_store.put(b"a region mask, white where to repaint")
    path = image_store.path(mask.sha256)
    assert path is not None
    _age(path, 2 * DAY)  # older than the orphan grace: the job has waited in the queue
    request = GenerationRequest(prompt="a harbour", width=1024, height=1024)
    edit = region("a" * 64, (8, 8), mask.sha256)
    (job,) = await queue.enqueue(
        5, [JobSpec(JobKind.INPAINT, request, cost=4, strength=0.9, edit=edit)], interaction_id=None
    )
    blobs = FileBlobs(image_store.root)

    report = await purge(db, blobs, now=clock(), older_than=timedelta(days=30))
    assert report.orphans == 0 and image_store.path(mask.sha256) is not None

    # Once the job ended long ago and is purged, its mask is an orphan like any other.
    (claimed,) = await queue.claim("w")
    await queue.fail(claimed.id, "w", "the GPU fell over", retry=False)
    clock.advance(40 * DAY)
    purged = await purge(db, blobs, now=clock(), older_than=timedelta(days=30))
    assert (purged.jobs, purged.orphans) == (1, 1)
    assert image_store.path(mask.sha256) is None
    assert (await queue.get(job.id)).images_purged_at == clock()
