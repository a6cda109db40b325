"""Concurrency on SQLite and PostgreSQL: claimers in several processes, racing commands."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from storage.contract import JobStatus
from storage.db import Database
from storage.errors import LimitExceeded, QuotaExceeded
from storage.limits import Limits
from storage.queue import JobQueue
from storage.quotas import Quotas
from tests.storage.helpers import spec

ROOT = Path(__file__).resolve().parents[2]
ALICE = 1001


async def _run_processes(module: str, url: str, arg: str, count: int) -> list[Any]:
    """Start ``count`` helper processes, release them together, return their JSON lists."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            url,
            arg,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(count)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
    outputs = await asyncio.wait_for(
        asyncio.gather(*(proc.communicate(b"go\n") for proc in procs)), 240
    )
    results: list[Any] = []
    for proc, (out, _) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0
        results.extend(json.loads(out))
    return results


@pytest.mark.slow
async def test_500_jobs_16_claimers_in_4_processes_each_finished_exactly_once(
    db: Database, database_url: str
) -> None:
    queue = JobQueue(db, limits=Limits(max_concurrent=100, max_queued=100))
    expected: set[int] = set()
    for user in range(50):
        jobs = await queue.enqueue(2000 + user, [spec(0)] * 10, interaction_id=None)
        expected.update(job.id for job in jobs)
    assert len(expected) == 500

    results = await _run_processes("tests.storage.claimer", database_url, "4", 4)
    finished = [(int(job_id), str(worker)) for job_id, worker in results]

    assert not [w for _, w in finished if w.startswith("lease-lost")]
    counts = Counter(job_id for job_id, _ in finished)
    assert set(counts) == expected
    assert max(counts.values()) == 1
    assert len({worker for _, worker in finished}) > 4  # several claimers really took part
    done = await queue.user_jobs(2000, [JobStatus.SUCCEEDED])
    assert len(done) == 10 and all(job.attempts == 1 for job in done)
    stats = await queue.stats()
    assert (stats.queued, stats.running) == (0, 0)
    for job_id in sorted(expected)[::50]:
        assert len(await queue.images(job_id)) == 5


@pytest.mark.slow
async def test_100_commands_from_4_processes_never_exceed_the_quota(
    database_url: str, quotas: Quotas
) -> None:
    await quotas.set_limit(ALICE, 7, "day")
    await quotas.set_caps(ALICE, max_concurrent=None, max_queued=100)
    results = await _run_processes("tests.storage.enqueuer", database_url, "25", 4)
    assert len(results) == 100
    assert results.count("ok") == 7
    assert results.count("QuotaExceeded") == 93
    status = await quotas.status(ALICE)
    assert (status.used, status.queued) == (7, 7)


async def test_quota_of_5_with_50_simultaneous_commands_accepts_exactly_5(
    queue: JobQueue, quotas: Quotas
) -> None:
    await quotas.set_limit(ALICE, 5, "day")
    await quotas.set_caps(ALICE, max_concurrent=None, max_queued=100)
    results = await asyncio.gather(
        *(queue.enqueue(ALICE, [spec(1)], interaction_id=9000 + i) for i in range(50)),
        return_exceptions=True,
    )
    accepted = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(accepted) == 5 and len(refused) == 45
    assert all(isinstance(error, QuotaExceeded) for error in refused)
    assert "used 5 of 5 images this day and this needs 1" in str(refused[0])
    assert "resets at" in str(refused[0])
    status = await quotas.status(ALICE)
    assert (status.used, status.left, status.queued) == (5, 0, 5)


async def test_queue_cap_with_50_simultaneous_commands_accepts_exactly_the_cap(
    queue: JobQueue, quotas: Quotas
) -> None:
    await quotas.set_caps(ALICE, max_concurrent=None, max_queued=5)
    results = await asyncio.gather(
        *(queue.enqueue(ALICE, [spec(1)], interaction_id=9100 + i) for i in range(50)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 45 and all(isinstance(e, LimitExceeded) for e in refused)
    assert "at most 5 may wait at once" in str(refused[0])
    assert (await quotas.status(ALICE)).used == 5


async def test_simultaneous_claimers_never_exceed_a_users_running_cap(
    queue: JobQueue, quotas: Quotas
) -> None:
    await quotas.set_caps(ALICE, max_concurrent=2, max_queued=20)
    await queue.enqueue(ALICE, [spec(0)] * 12, interaction_id=None)
    claims = await asyncio.gather(*(queue.claim(f"w{i}", limit=3) for i in range(16)))
    assert sum(len(c) for c in claims) == 2
    assert len(await queue.user_jobs(ALICE, [JobStatus.RUNNING])) == 2


async def test_same_interaction_enqueued_simultaneously_makes_one_job_set(
    queue: JobQueue, quotas: Quotas
) -> None:
    results = await asyncio.gather(
        *(queue.enqueue(ALICE, [spec(4), spec(4)], interaction_id=4242) for _ in range(10))
    )
    assert len({tuple(job.id for job in jobs) for jobs in results}) == 1
    assert (await quotas.status(ALICE)).used == 8
