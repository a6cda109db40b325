"""A claiming process for the concurrency tests: ``python -m tests.storage.claimer URL TASKS``.

Prints ``ready``, waits for a line on stdin (so all processes start together), then runs TASKS
claimers that claim one job at a time and finish it until the queue is empty, and prints a JSON
list of ``[job_id, worker_id]`` it finished.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from storage.db import Database
from storage.errors import LeaseLost
from storage.limits import Limits
from storage.queue import JobQueue
from tests.storage.helpers import grid_images


async def _claimer(queue: JobQueue, worker_id: str, done: list[list[object]]) -> None:
    while True:
        claimed = await queue.claim(worker_id)
        if not claimed:
            return
        for job in claimed:
            try:
                await queue.finish(job.id, worker_id, grid_images(job.id, job.seed), 0.01)
            except LeaseLost:
                done.append([job.id, "lease-lost:" + worker_id])
                continue
            done.append([job.id, worker_id])


async def main(url: str, tasks: int) -> None:
    db = await Database.open(url)
    queue = JobQueue(db, limits=Limits(max_concurrent=100, max_queued=100))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    done: list[list[object]] = []
    await asyncio.gather(*(_claimer(queue, f"{os.getpid()}-{i}", done) for i in range(tasks)))
    await db.close()
    print(json.dumps(done), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
