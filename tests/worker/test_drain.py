"""Draining a worker: finish the job in hand, claim no more, exit 0 (SIGTERM or --drain)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from gpu_worker.engine import Engine
from gpu_worker.loop import Worker
from imagine.settings import Settings
from storage.contract import JobStatus
from storage.queue import JobQueue
from tests.worker.holding import HoldingEngine
from tests.worker.test_loop import (
    PROJECT_ROOT,
    USER,
    holding_worker,
    process_env,
    services,
    spec,
    wait_for_line,
    worker_settings,
)

__all__ = ["services"]  # the fixture, shared with test_loop


@pytest.mark.parametrize("at_last_step", [False, True], ids=["mid-render", "next-prefetched"])
async def test_drain_finishes_the_job_in_hand_and_claims_no_more(
    services: dict[str, Any],
    engine: Engine,
    tiny_settings: Settings,
    database_url: str,
    tmp_path: Path,
    at_last_step: bool,
) -> None:
    queue: JobQueue = services["queue"]
    first, second = await queue.enqueue(USER, [spec(), spec("a calm sea")], interaction_id=31)
    holding = HoldingEngine(engine, at_last_step=at_last_step)
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    worker = Worker(settings.worker(), queue=queue, images=services["images"], engine=holding)
    drain = asyncio.Event()
    serving = asyncio.create_task(worker.run(asyncio.Event(), drain=drain))
    assert await asyncio.to_thread(holding.started.wait, 60)
    if at_last_step:
        # The last step already claimed the next job, so the device would not wait for it.
        assert worker._next is not None
        assert await asyncio.wait_for(asyncio.shield(worker._next), 30) is not None
    drain.set()
    holding.resume.set()
    await asyncio.wait_for(serving, 60)

    done = await queue.get(first.id)
    assert done.status is JobStatus.SUCCEEDED
    assert len(await queue.images(first.id)) == 5
    left = await queue.get(second.id)
    assert (left.status, left.lease_owner, left.attempts) == (JobStatus.QUEUED, None, 0)


async def drain_command(settings: Settings, worker_id: str | None = None) -> Any:
    env = process_env(settings, worker_id or "")
    if worker_id is None:
        del env["IMAGINE_WORKER_ID"]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "imagine",
        "worker",
        "--drain",
        env=env,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.slow
async def test_sigterm_drains_a_worker_process(
    services: dict[str, Any], tiny_settings: Settings, database_url: str, tmp_path: Path
) -> None:
    queue: JobQueue = services["queue"]
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    first, second = await queue.enqueue(USER, [spec(), spec("a calm sea")], interaction_id=32)
    async with holding_worker(settings, "draining") as proc:
        proc.send_signal(signal.SIGTERM)
        await wait_for_line(proc.stderr, "SIGTERM: draining")
        assert proc.stdin is not None
        proc.stdin.write(b"resume\n")
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 0
    assert (await queue.get(first.id)).status is JobStatus.SUCCEEDED
    left = await queue.get(second.id)
    assert (left.status, left.attempts) == (JobStatus.QUEUED, 0)
    assert list((settings.data_dir / "workers").glob("*.pid")) == []


@pytest.mark.slow
async def test_drain_command_drains_the_running_worker_and_waits_for_it(
    services: dict[str, Any], tiny_settings: Settings, database_url: str, tmp_path: Path
) -> None:
    queue: JobQueue = services["queue"]
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    first, second = await queue.enqueue(USER, [spec(), spec("a calm sea")], interaction_id=33)
    async with holding_worker(settings, "host-gpu0") as proc:
        command = await drain_command(settings)
        assert command.stdout is not None
        line = await asyncio.wait_for(command.stdout.readline(), 60)
        assert line.decode().strip() == f"draining worker host-gpu0 (pid {proc.pid})"
        await wait_for_line(proc.stderr, "SIGTERM: draining")
        assert command.returncode is None  # it waits while the job finishes
        assert proc.stdin is not None
        proc.stdin.write(b"resume\n")
        out, err = await asyncio.wait_for(command.communicate(), 60)
        assert command.returncode == 0, err.decode()
        assert out.decode().strip() == f"worker host-gpu0 (pid {proc.pid}) finished and exited"
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    assert (await queue.get(first.id)).status is JobStatus.SUCCEEDED
    assert (await queue.get(second.id)).status is JobStatus.QUEUED


@pytest.mark.slow
async def test_drain_command_skips_other_workers_and_stale_lock_files(
    services: dict[str, Any], tiny_settings: Settings, database_url: str, tmp_path: Path
) -> None:
    queue: JobQueue = services["queue"]
    settings = worker_settings(tiny_settings, database_url, tmp_path)
    await queue.enqueue(USER, [spec()], interaction_id=34)
    async with holding_worker(settings, "host-gpu1") as proc:
        # Another worker id: this one is left alone.
        command = await drain_command(settings, "host-gpu7")
        out, _ = await asyncio.wait_for(command.communicate(), 60)
        assert command.returncode == 0
        assert out.decode().strip() == (
            f"no worker host-gpu7 is running under {settings.data_dir / 'workers'}; "
            "nothing to drain"
        )
        assert proc.returncode is None
        (lock,) = (settings.data_dir / "workers").glob("*.pid")
        proc.kill()  # no clean exit: the file stays, but its lock dies with the process
        await proc.wait()
    assert lock.exists()
    command = await drain_command(settings)
    out, _ = await asyncio.wait_for(command.communicate(), 60)
    assert command.returncode == 0
    assert "nothing to drain" in out.decode()
    assert not lock.exists()
