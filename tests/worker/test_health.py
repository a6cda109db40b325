"""The worker's health port: ``/readyz`` waits for the model and flips with the database."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gpu_worker.engine import Engine
from gpu_worker.task import RenderResult, RenderTask, StepEvent
from imagine.settings import Settings
from tests.plugins.web import TcpProxy, free_port, get_json, until


class GatedEngine:
    """The real tiny engine whose model load waits until the test lets it go."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.release = threading.Event()

    def prepare(self) -> str:
        if not self.release.wait(60):
            raise TimeoutError("the test never let the model load")
        return self.inner.prepare()

    def capabilities(self) -> dict[str, Any]:
        return self.inner.capabilities()

    def render(
        self,
        task: RenderTask,
        *,
        on_step: Callable[[StepEvent], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> RenderResult:
        return self.inner.render(task, on_step=on_step, cancelled=cancelled)


@pytest.mark.postgres
async def test_worker_readyz_waits_for_the_model_and_the_database(
    tiny_model_dir: Path, tmp_path: Path, proxied_postgres: tuple[str, TcpProxy]
) -> None:
    from gpu_worker.loop import run_worker
    from gpu_worker.models import ModelRegistry
    from storage.bundle import open_storage

    url, proxy = proxied_postgres
    port = free_port()
    # Long poll and lease intervals: the worker itself stays off the database while it is cut.
    settings = Settings.load(
        {},
        model=str(tiny_model_dir),
        data_dir=tmp_path / "data",
        database_url=url,
        worker_health_port=port,
        poll_interval=60.0,
        lease_seconds=120.0,
    )
    engine = GatedEngine(Engine(ModelRegistry(settings.engine()), cpu_threads=1))
    stop = asyncio.Event()
    storage = await open_storage(settings.storage())
    task = asyncio.create_task(
        run_worker(
            settings.worker(), stop=stop, queue=storage.queue, images=storage.images, engine=engine
        )
    )
    base = f"http://127.0.0.1:{port}"
    try:
        loading = await until(f"{base}/readyz", 503)
        assert loading["checks"]["model"] == {"ok": False, "detail": "still loading the model"}
        assert loading["checks"]["database"]["ok"] is True
        assert await get_json(f"{base}/healthz") == (200, {"ok": True})

        engine.release.set()
        ready = await until(f"{base}/readyz", 200)
        assert ready["checks"]["model"]["ok"] is True
        assert ready["checks"]["model"]["detail"] == engine.inner.prepare()

        await proxy.stop()
        down = await until(f"{base}/readyz", 503)
        assert down["checks"]["database"]["ok"] is False
        assert down["checks"]["model"]["ok"] is True
        await proxy.start()
        await until(f"{base}/readyz", 200)
    finally:
        engine.release.set()
        stop.set()
        await asyncio.wait_for(task, 60)
        await storage.close()
