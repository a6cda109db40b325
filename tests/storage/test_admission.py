"""The read-only admission check before downloads, and which blobs a refused command may delete."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import func, select

from storage.blobs import unreferenced
from storage.db import Database
from storage.errors import InvalidValue, LimitExceeded, QuotaExceeded, UserBanned
from storage.images import FileImageStore
from storage.queue import JobQueue
from storage.quotas import Quotas
from storage.tables import ledger
from storage.tables import users as users_table
from storage.users import Users
from tests.storage.helpers import grid_images, spec

ALICE, BOB = 2001, 2002


async def _rows(db: Database) -> tuple[int, int]:
    async with db.read() as conn:
        people = (await conn.execute(select(func.count()).select_from(users_table))).scalar_one()
        entries = (await conn.execute(select(func.count()).select_from(ledger))).scalar_one()
    return int(people), int(entries)


async def test_check_admission_refuses_like_enqueue_and_writes_nothing(
    db: Database, queue: JobQueue, quotas: Quotas, users: Users
) -> None:
    await queue.check_admission(ALICE, [spec(4)])  # a user never seen: fine, and not created
    assert await _rows(db) == (0, 0)

    await users.ban(BOB)
    with pytest.raises(UserBanned, match="You are banned"):
        await queue.check_admission(BOB, [spec(4)])

    await quotas.set_limit(ALICE, 8, "day")
    await queue.enqueue(ALICE, [spec(4)], interaction_id=1)
    await queue.check_admission(ALICE, [spec(4)])
    before = await _rows(db)
    with pytest.raises(QuotaExceeded, match="used 4 of 8 images") as precheck:
        await queue.check_admission(ALICE, [spec(4), spec(4)])
    with pytest.raises(QuotaExceeded) as transaction:
        await queue.enqueue(ALICE, [spec(4), spec(4)], interaction_id=2)
    assert str(precheck.value) == str(transaction.value)

    await quotas.set_caps(ALICE, max_concurrent=None, max_queued=1)
    with pytest.raises(LimitExceeded, match="at most 1 may wait"):
        await queue.check_admission(ALICE, [spec(0)])
    # The interaction that already queued its jobs passes (its retry returns them).
    await queue.check_admission(ALICE, [spec(4)], interaction_id=1)
    with pytest.raises(InvalidValue, match="at least one job"):
        await queue.check_admission(ALICE, [])
    assert await _rows(db) == before


async def test_only_blobs_nothing_names_are_unreferenced(
    queue: JobQueue, db: Database, image_store: FileImageStore
) -> None:
    inputs = [await image_store.put(f"input {n}".encode(), ".png") for n in range(4)]
    a, b, c, d = (blob.sha256 for blob in inputs)
    with_inputs = dataclasses.replace(spec(4), input_images=(a, b))
    [job] = await queue.enqueue(ALICE, [with_inputs], interaction_id=1)
    [claimed] = await queue.claim("w")
    results = grid_images(claimed.id, claimed.seed)
    await queue.finish(claimed.id, "w", results, gpu_seconds=1.0)
    result = results[0].sha256  # a result sent back as an image prompt is the same blob

    assert await unreferenced(db, [a, b, c, d, c, result]) == [c, d]
    assert await unreferenced(db, []) == []
    with pytest.raises(InvalidValue):
        await unreferenced(db, ["%"])  # only hashes, never a pattern

    assert await image_store.delete(c) and not await image_store.delete(c)
    assert image_store.path(c) is None and image_store.path(a) is not None
    assert job.input_images == (a, b)
