"""``imagine replay JOB_ID [--out DIR]``: render a stored job again and compare the images.

Everything comes from the database record (request, seed, kind, strength, input images and the
parent's image); the images are rendered on the local engine with the configured models and
compared pixel by pixel with the stored ones. Prints a JSON report. Exit status: 0 when every
image is identical, 3 when some differ (the report says by how much), 2 for a job that cannot
be replayed (unknown, or without stored images), 1 when the model or database fails.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from imagine.settings import Settings
from storage.contract import JobStatus
from storage.errors import StorageError

DIFFERENT = 3


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Replay one job and print the comparison."""
    from gpu_worker.errors import EngineError

    try:
        report = asyncio.run(_replay(args.job_id, settings, args.out))
    except _NotReplayable as exc:
        print(f"imagine replay: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"imagine replay: {exc}", file=sys.stderr)
        return 2
    except EngineError as exc:
        print(f"imagine replay: {exc}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        print(f"imagine replay: cannot reach the database: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    if not report["equal"]:
        differing = [str(i["index"]) for i in report["images"] if not i["equal"]]
        print(
            f"imagine replay: job {args.job_id}: images {', '.join(differing)} differ "
            "from the stored ones (index -1 is the grid)",
            file=sys.stderr,
        )
        return DIFFERENT
    return 0


class _NotReplayable(Exception):
    """The job exists but has nothing to compare with."""


async def _replay(job_id: int, settings: Settings, out: Path | None) -> dict[str, Any]:
    import diffusers.utils.logging
    import transformers.utils.logging

    # The output is the JSON report; library chatter stays out of it.
    libraries: tuple[Any, ...] = (diffusers.utils.logging, transformers.utils.logging)
    for library in libraries:
        library.set_verbosity_error()

    from gpu_worker.engine import Engine
    from gpu_worker.models import ModelRegistry
    from gpu_worker.replay import replay
    from storage.bundle import open_storage

    async with await open_storage(settings.storage()) as storage:
        job = await storage.queue.get(job_id)
        if job.status is not JobStatus.SUCCEEDED:
            raise _NotReplayable(
                f"job {job_id} is {job.status}; only succeeded jobs have images to compare"
            )
        if job.images_purged_at is not None:
            raise _NotReplayable(
                f"the stored images of job {job_id} were removed by retention "
                f"({job.images_purged_at:%Y-%m-%d}); there is nothing to compare with"
            )
        engine = Engine(ModelRegistry(settings.engine()))
        report = await replay(job, storage.queue, storage.images, engine, out_dir=out)
    return {
        "job_id": report.job_id,
        "model": report.model,
        "equal": report.equal,
        "images": [dataclasses.asdict(image) for image in report.images],
    }
