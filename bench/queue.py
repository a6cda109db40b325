"""Queue benchmark: claim throughput and duplicates with 8 claimers, and pick-up latency.

    python -m bench.queue [--jobs 2000] [--claimers 8] [--processes 2] [--postgres URL]
                          [--no-postgres] [--no-sqlite]

For PostgreSQL and SQLite, on a fresh database migrated to head: enqueue ``--jobs`` jobs over
many users (16 each), then let ``--claimers`` concurrent claimers (spread over ``--processes``
processes, each claimer on its own connection) claim one job at a time until the queue is empty;
report claims per second (from the start signal until the last process has reported its claims)
and how many jobs were claimed more than once (must be 0). A second round claims and finishes
each job. Then an idle worker waits on ``wait_for_job`` while a producer on another connection
enqueues one job at a time; pick-up latency is the time from the committed enqueue to the worker
holding the job. The machine's load average is printed alongside (the numbers depend on it).
Prints one JSON object, with the targets checked: >= 500 claims/s on PostgreSQL, 0 duplicates,
pick-up p95 <= 50 ms.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's ``queue``: run as a script, its directory
# would shadow it, so put the repository root there instead before anything imports ``queue``.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

import asyncpg  # noqa: E402

from storage.contract import GenerationRequest, JobKind, JobSpec  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.limits import Limits  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.queue import JobQueue  # noqa: E402

# The largest limits Limits accepts: nothing here is meant to be refused.
UNCAPPED = Limits(images=10**6, period="day", max_concurrent=100, max_queued=1000)
CLAIMS_TARGET = 500  # per second, PostgreSQL
PICKUP_TARGET_MS = 50
SPEC = JobSpec(kind=JobKind.IMAGINE, request=GenerationRequest(prompt="a bench"), cost=4)


async def _fill(queue: JobQueue, jobs: int) -> float:
    started = time.perf_counter()
    left, user = jobs, 10_000
    while left > 0:
        batch = min(16, left)  # 16 jobs per command at most, so one command per user
        await queue.enqueue(user, [SPEC] * batch, interaction_id=None)
        left -= batch
        user += 1
    return jobs / (time.perf_counter() - started)


async def _claimers(queue: JobQueue, claimers: int, finish: bool, prefix: str) -> list[int]:
    claimed: list[int] = []

    async def claimer(worker: str) -> None:
        while True:
            got = await queue.claim(worker)
            # An empty claim can also mean that every queued job was locked by another claimer
            # for a moment; stop only once the queue really is empty.
            if not got and (await queue.stats()).queued == 0:
                return
            for job in got:
                claimed.append(job.id)
                if finish:
                    await queue.finish(job.id, worker, [], 0.0)

    await asyncio.gather(*(claimer(f"{prefix}-{i}") for i in range(claimers)))
    return claimed


async def _child(url: str, claimers: int, finish: bool) -> None:
    """A claiming process: waits for a line on stdin, claims until empty, prints the ids."""
    db = await Database.open(url, pool_size=claimers + 2)
    queue = JobQueue(db, limits=UNCAPPED)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    claimed = await _claimers(queue, claimers, finish, f"bench-{os.getpid()}")
    print(json.dumps(claimed), flush=True)
    await db.close()


async def _claim_round(
    url: str, claimers: int, processes: int, finish: bool
) -> tuple[float, int, int]:
    per_process = [claimers // processes + (i < claimers % processes) for i in range(processes)]
    procs = []
    for count in per_process:
        args = [__file__, "--child", url, "--claimers", str(count)]
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                *args,
                *(["--finish"] if finish else []),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        )
    for proc in procs:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.strip() == b"ready", line
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
    # Each process prints its claims as soon as the queue is empty; closing its connections
    # afterwards is not part of the measurement.
    lines = await asyncio.gather(*(proc.stdout.readline() for proc in procs if proc.stdout))
    elapsed = time.perf_counter() - started
    for proc in procs:
        await proc.communicate()
        assert proc.returncode == 0, f"a claiming process exited with {proc.returncode}"
    claimed = [job_id for line in lines for job_id in json.loads(line)]
    duplicates = sum(count - 1 for count in Counter(claimed).values() if count > 1)
    return len(claimed) / elapsed, duplicates, len(claimed)


async def _pickup(url: str, dialect: str, trials: int) -> dict[str, float]:
    producer_db = await Database.open(url)
    # SQLite wake-ups are in-process: the worker shares the producer's process and handle.
    worker_db = await Database.open(url) if dialect == "postgresql" else producer_db
    producer = JobQueue(producer_db, limits=UNCAPPED)
    worker = JobQueue(worker_db, limits=UNCAPPED)
    await worker_db.listen()
    picked: asyncio.Queue[float] = asyncio.Queue()
    stop = asyncio.Event()
    idle = asyncio.Event()

    async def idle_worker() -> None:
        while not stop.is_set():
            jobs = await worker.claim("pickup")
            for job in jobs:
                await picked.put(time.perf_counter())
                await worker.finish(job.id, "pickup", [], 0.0)
            if not jobs:
                idle.set()
                await worker_db.wait_for_job(5.0)

    task = asyncio.create_task(idle_worker())
    latencies: list[float] = []
    with_enqueue: list[float] = []
    try:
        for _ in range(trials):
            # Enqueue only once the worker found the queue empty and went to wait.
            await asyncio.wait_for(idle.wait(), 10)
            idle.clear()
            started = time.perf_counter()
            await producer.enqueue(7, [SPEC], interaction_id=None)
            committed = time.perf_counter()
            picked_at = await asyncio.wait_for(picked.get(), 10)
            latencies.append((picked_at - committed) * 1000)
            with_enqueue.append((picked_at - started) * 1000)
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if worker_db is not producer_db:
            await worker_db.close()
        await producer_db.close()
    latencies.sort()
    return {
        "pickup_ms_p50": round(statistics.median(latencies), 2),
        "pickup_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "pickup_ms_max": round(latencies[-1], 2),
        "enqueue_call_to_claim_ms_p50": round(statistics.median(with_enqueue), 2),
    }


async def _bench(url: str, jobs: int, claimers: int, processes: int) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    db = await Database.open(url)
    queue = JobQueue(db, limits=UNCAPPED)
    result: dict[str, Any] = {
        "jobs": jobs,
        "claimers": claimers,
        "processes": processes,
        "cpus": os.cpu_count(),
        "load_1m_before": round(os.getloadavg()[0], 2),
    }
    try:
        result["enqueues_per_s"] = round(await _fill(queue, jobs), 1)
        rate, duplicates, count = await _claim_round(url, claimers, processes, finish=False)
        result.update(claims_per_s=round(rate, 1), duplicates=duplicates, claimed=count)
        for job in await queue.running_jobs():
            await queue.finish(job.id, job.lease_owner or "", [], 0.0)
        # Second round on fresh jobs: claim and finish, a worker's real cycle.
        await _fill(queue, jobs)
        rate, duplicates, count = await _claim_round(url, claimers, processes, finish=True)
        result.update(
            claim_finish_per_s=round(rate, 1),
            claim_finish_duplicates=duplicates,
            claim_finish_claimed=count,
        )
    finally:
        await db.close()
    postgresql = "postgres" in url
    result.update(await _pickup(url, "postgresql" if postgresql else "sqlite", 20))
    result["load_1m_after"] = round(os.getloadavg()[0], 2)
    targets = {
        "no_duplicates": result["duplicates"] == result["claim_finish_duplicates"] == 0,
        "all_claimed": result["claimed"] == result["claim_finish_claimed"] == jobs,
        f"pickup_ms_p95<={PICKUP_TARGET_MS}": result["pickup_ms_p95"] <= PICKUP_TARGET_MS,
    }
    if postgresql:
        targets[f"claims_per_s>={CLAIMS_TARGET}"] = result["claims_per_s"] >= CLAIMS_TARGET
    result["targets_met"] = targets
    return result


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--claimers", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="claimers spread over these")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--finish", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await _child(args.child, args.claimers, args.finish)
        return
    out: dict[str, Any] = {}
    if not args.no_postgres:
        name = f"imagine_bench_{secrets.token_hex(4)}"
        await _admin(args.postgres, f'CREATE DATABASE "{name}"')
        try:
            url = args.postgres.rsplit("/", 1)[0] + f"/{name}"
            out["postgresql"] = await _bench(url, args.jobs, args.claimers, args.processes)
        finally:
            await _admin(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            out["sqlite"] = await _bench(url, args.jobs, args.claimers, args.processes)
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
