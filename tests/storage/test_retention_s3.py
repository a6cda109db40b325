"""Retention on the S3 image store (a real S3 protocol server): objects instead of files.

The purge is the same one the file store gets; only the listing and the removal differ. An
object's age is its ``LastModified``, which the server sets, so the tests move the purge's
``now`` forward instead of ageing the objects.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from imagine.settings import Settings
from storage.db import Database
from storage.queue import JobQueue
from storage.retention import S3Blobs, purge, store_contents
from storage.s3 import S3ImageStore
from storage.stores import open_image_store
from tests.plugins.database import FakeClock
from tests.s3server import S3Server
from tests.storage.test_cli import _imagine
from tests.storage.test_retention import _finished

DAY = 86400


@pytest.fixture
async def store(s3_environ: dict[str, str]) -> AsyncIterator[S3ImageStore]:
    """The S3 store the settings name (prefix ``images/``)."""
    opened = await open_image_store(Settings.load(s3_environ).image_store_config)
    assert isinstance(opened, S3ImageStore)
    try:
        yield opened
    finally:
        await opened.close()


def _key(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"images/{digest[:2]}/{digest[2:4]}/{digest}.png"


async def test_purge_removes_old_job_objects_and_orphans_and_keeps_the_rest(
    db: Database,
    queue: JobQueue,
    store: S3ImageStore,
    clock: FakeClock,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    assert isinstance(store_contents(store), S3Blobs)
    clock.current -= timedelta(days=40)  # the old job ran 40 days ago; the clock ends at now
    shared_input = await store.put(b"an input image used again later")
    old = await _finished(
        queue, store, [b"old only", b"old and new"], inputs=(shared_input.sha256,)
    )
    clock.advance(40 * DAY)
    new = await _finished(queue, store, [b"old and new"], inputs=(shared_input.sha256,))
    await store.put(b"a refused command's image")
    client = s3_server.client()
    # Not blobs, or not under the store's prefix: a purge never touches them.
    client.put_object(Bucket=s3_bucket, Key="images/README.txt", Body=b"notes")
    client.put_object(
        Bucket=s3_bucket, Key=_key(b"elsewhere").replace("images/", "other/", 1), Body=b"elsewhere"
    )
    before = set(s3_server.keys(s3_bucket))
    # Two objects a page, so the removal runs while the listing goes on.
    blobs = S3Blobs(store, page_size=2)

    # Every object was written just now: within the grace period nothing goes yet.
    fresh = await purge(db, blobs, now=clock(), older_than=timedelta(days=30), dry_run=True)
    assert (fresh.jobs, fresh.job_files, fresh.temp_files, fresh.orphans) == (1, 0, 0, 0)

    later = clock() + timedelta(hours=2)
    dry = await purge(db, blobs, now=later, older_than=timedelta(days=30), dry_run=True)
    assert (dry.jobs, dry.job_files, dry.temp_files, dry.orphans) == (1, 1, 0, 1)
    assert set(s3_server.keys(s3_bucket)) == before
    assert (await queue.get(old)).images_purged_at is None

    done = await purge(db, blobs, now=later, older_than=timedelta(days=30))
    assert (done.jobs, done.job_files, done.temp_files, done.orphans) == (1, 1, 0, 1)
    assert done.bytes_freed == len(b"old only") + len(b"a refused command's image")
    assert set(s3_server.keys(s3_bucket)) == before - {
        _key(b"old only"),
        _key(b"a refused command's image"),
    }
    assert await store.exists(hashlib.sha256(b"old and new").hexdigest())  # the new job's
    assert await store.exists(shared_input.sha256)  # the new job's input
    assert (await queue.get(old)).images_purged_at == later
    assert (await queue.get(new)).images_purged_at is None
    assert len(await queue.images(old)) == 2  # the rows stay

    again = await purge(db, blobs, now=later, older_than=timedelta(days=30))
    assert (again.jobs, again.job_files, again.orphans, again.bytes_freed) == (0, 0, 0, 0)


async def test_purge_command_uses_the_configured_bucket(
    database_environ: dict[str, str],
    database_url: str,
    s3_environ: dict[str, str],
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    environ = {**database_environ, **s3_environ}
    db = await Database.open(database_url)
    try:
        store = await open_image_store(Settings.load(environ).image_store_config)
        try:
            old = await _finished(JobQueue(db), store, [b"from the bucket"])
        finally:
            await store.close()
    finally:
        await db.close()
    keys = s3_server.keys(s3_bucket)

    done = await asyncio.to_thread(
        _imagine, "purge", "--older-than", "0.5s", "--json", environ=environ
    )
    assert done.returncode == 0, done.stderr
    # The job is due and marked; its object, written a moment ago, waits out the grace period.
    assert '"jobs": 1' in done.stdout and '"job_files": 0' in done.stdout
    assert s3_server.keys(s3_bucket) == keys
    shown = await asyncio.to_thread(_imagine, "jobs", "show", str(old), "--json", environ=environ)
    assert '"images_purged_at": "' in shown.stdout

    missing = {**environ, **s3_server.environ("no-such-bucket", "images")}
    refused = await asyncio.to_thread(_imagine, "purge", "--dry-run", environ=missing)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"imagine purge: image store s3://no-such-bucket/images at {s3_server.endpoint_url}: "
        "the bucket 'no-such-bucket' does not exist; create it, or fix IMAGINE_IMAGE_STORE / "
        "IMAGINE_S3_ENDPOINT_URL"
    )
