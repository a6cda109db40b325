"""An enqueueing process for the concurrency tests: ``python -m tests.storage.enqueuer URL N``.

Prints ``ready``, waits for a line on stdin (so all processes start together), then sends N
one-image commands for one user at once and prints a JSON list: ``"ok"`` or the error's class.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from storage.db import Database
from storage.errors import StorageError
from storage.queue import JobQueue
from tests.storage.helpers import spec

USER = 1001


async def _one(queue: JobQueue, interaction_id: int) -> str:
    try:
        await queue.enqueue(USER, [spec(1)], interaction_id=interaction_id)
    except StorageError as exc:
        return type(exc).__name__
    return "ok"


async def main(url: str, count: int) -> None:
    db = await Database.open(url)
    queue = JobQueue(db)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    base = os.getpid() * 1000
    results = await asyncio.gather(*(_one(queue, base + i) for i in range(count)))
    await db.close()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
