"""``imagine worker``: a GPU worker alone, for multi-host deployments.

Connects to the configured database and image store, loads the model, and serves jobs. SIGTERM
or SIGINT drains it: it claims no more, finishes the job in hand (render, store, finish) and
exits 0; a second signal stops it at once (a job still rendering goes back to the queue, no
attempt spent). ``imagine worker --drain`` sends that first signal to the workers running under
the data dir (or only ``IMAGINE_WORKER_ID``'s) and waits until they have exited. ``--once``
exits when the queue is empty. A model or image store that cannot be used is reported on one
line, exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

from imagine.settings import Settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from gpu_worker.task import RenderEngine


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the worker loop until stopped, or (``--drain``) drain the running ones."""
    if getattr(args, "drain", False):
        from imagine.commands._local_workers import drain

        return drain(settings.data_dir, settings.worker_id, float(args.timeout))
    from imagine.commands._logs import configure_logging, route_model_library_logs

    configure_logging(settings)
    route_model_library_logs()
    return asyncio.run(_serve(settings, once=bool(getattr(args, "once", False))))


async def _serve(settings: Settings, *, once: bool, engine: RenderEngine | None = None) -> int:
    """Open storage, install signal handlers and run the worker; the exit status."""
    from gpu_worker.errors import ModelLoadError
    from gpu_worker.loop import default_worker_id, run_worker
    from imagine.commands._local_workers import registered
    from storage.bundle import open_storage
    from storage.errors import ImageStoreError
    from storage.metrics import Metrics
    from storage.migrate import upgrade

    if settings.is_sqlite:
        # The embedded database may be new; bringing it to the newest schema is idempotent.
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(upgrade, settings.database)
    stop, drain = asyncio.Event(), asyncio.Event()

    def on_signal(signum: signal.Signals) -> None:
        if drain.is_set():
            log.warning("%s again: giving back the running job and stopping now", signum.name)
            stop.set()
        else:
            log.warning(
                "%s: draining: finishing the current job, claiming no more (send it again to "
                "stop at once)",
                signum.name,
            )
            drain.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    metrics = Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    try:
        storage = await open_storage(settings.storage())
    except ImageStoreError as exc:
        print(f"imagine worker: {exc}", file=sys.stderr)
        return 1
    worker_id = settings.worker_id or default_worker_id()
    try:
        with registered(settings.data_dir, worker_id):
            await run_worker(
                settings.worker(),
                stop=stop,
                drain=drain,
                queue=storage.queue,
                images=storage.images,
                metrics=metrics,
                once=once,
                engine=engine,
                worker_id=worker_id,
            )
    except ModelLoadError as exc:
        print(f"imagine worker: {exc}", file=sys.stderr)
        return 1
    finally:
        await storage.close()
    return 0
