"""``imagine worker``: a GPU worker alone, for multi-host deployments.

Connects to the configured database and image store, loads the model, and serves jobs until
SIGTERM or SIGINT (then it stops claiming, gives back a job still rendering, stores results
already rendered, and exits 0). ``--once`` exits when the queue is empty. A model that cannot be
loaded is reported on one line, exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

from imagine.settings import Settings

if TYPE_CHECKING:
    from gpu_worker.task import RenderEngine


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the worker loop until stopped."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(_serve(settings, once=bool(getattr(args, "once", False))))


async def _serve(settings: Settings, *, once: bool, engine: RenderEngine | None = None) -> int:
    """Open storage, install signal handlers and run the worker; the exit status."""
    from gpu_worker.errors import ModelLoadError
    from gpu_worker.loop import run_worker
    from storage.bundle import open_storage
    from storage.metrics import Metrics
    from storage.migrate import upgrade

    if settings.is_sqlite:
        # The embedded database may be new; bringing it to the newest schema is idempotent.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(upgrade, settings.database)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    storage = await open_storage(settings.storage())
    try:
        await run_worker(
            settings.worker(),
            stop=stop,
            queue=storage.queue,
            images=storage.images,
            metrics=metrics,
            once=once,
            engine=engine,
        )
    except ModelLoadError as exc:
        print(f"imagine worker: {exc}", file=sys.stderr)
        return 1
    finally:
        await storage.close()
    return 0
