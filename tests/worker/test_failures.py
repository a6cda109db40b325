"""A failed job's stored error: a public first line, the full detail after it, one reference."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.render import failure_summary
from gpu_worker.errors import InvalidTask, ModelLoadError, OutOfMemory, UnknownModel
from gpu_worker.failures import Failure
from gpu_worker.loop import Worker
from gpu_worker.task import RenderResult, RenderTask, StepEvent
from imagine.settings import Settings
from storage.contract import GenerationRequest, JobKind, JobSpec, JobStatus
from storage.db import Database
from storage.images import FileImageStore
from storage.limits import Limits
from storage.queue import JobQueue

REFERENCE = re.compile(r"[0-9a-f]{8}")


@pytest.mark.parametrize(
    ("exc", "public"),
    [
        (InvalidTask("a variation needs its source image, and none was given"), None),
        (UnknownModel("model 'v9' is not configured on this server; available: default"), None),
        (InvalidTask("two\nlines"), "two lines"),
        (OutOfMemory("out of memory on cuda:0 rendering one 1024x1024 image"), "out of memory"),
        (ModelLoadError("cannot load model '/srv/models/xl': no such file"), "internal"),
        (RuntimeError("CUDA error: an illegal memory access at /opt/torch/x.cu:12"), "internal"),
        (OSError(28, "No space left on device", "/data/images/ab"), "internal"),
        (InvalidTask(""), "internal"),
    ],
)
def test_public_reason_detail_and_reference(exc: Exception, public: str | None) -> None:
    failure = Failure.of(exc)
    assert REFERENCE.fullmatch(failure.reference)
    assert failure.detail == f"{type(exc).__name__}: {exc}"
    if public is None:
        assert failure.public == str(exc)
    elif public == "internal":
        assert failure.public == f"internal error (reference {failure.reference})"
    elif public == "out of memory":
        assert failure.public == (
            f"the server ran out of memory for this request (reference {failure.reference})"
        )
    else:
        assert failure.public == public
    assert failure.stored == f"{failure.public}\n{failure.detail}"
    # The bot shows exactly the public reason, nothing of the detail.
    assert failure_summary(failure.stored, 1) == failure.public
    assert str(failure) == f"(reference {failure.reference}): {failure.detail}"


def test_references_differ() -> None:
    assert len({Failure.of(RuntimeError("x")).reference for _ in range(20)}) == 20


class _BrokenEngine:
    """An engine whose every render fails the way a driver does."""

    def prepare(self) -> str:
        return "broken"

    def capabilities(self) -> dict[str, Any]:
        return {}

    def render(
        self,
        task: RenderTask,
        *,
        on_step: Callable[[StepEvent], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> RenderResult:
        raise RuntimeError("CUDA error: an illegal memory access at /opt/torch/kernels.cu:12")


async def test_an_internal_error_is_stored_in_full_and_shown_by_reference(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gpu_worker")
    db = await Database.open(database_url)
    try:
        queue = JobQueue(db, max_attempts=1, limits=Limits(images=100))
        request = GenerationRequest(prompt="a fox", segments=(("a fox", 1.0),), steps=2)
        (job,) = await queue.enqueue(
            7, [JobSpec(kind=JobKind.IMAGINE, request=request, cost=4)], interaction_id=3
        )
        settings = Settings.load({}, data_dir=tmp_path, database_url=database_url)
        worker = Worker(
            settings.worker(),
            queue=queue,
            images=FileImageStore(tmp_path / "images"),
            engine=_BrokenEngine(),
        )
        await asyncio.wait_for(worker.run(asyncio.Event(), once=True), 60)
        failed = await queue.get(job.id)
    finally:
        await db.close()
    assert failed.status is JobStatus.FAILED and failed.error is not None
    public, detail = failed.error.split("\n")
    match = re.fullmatch(r"internal error \(reference ([0-9a-f]{8})\)", public)
    assert match is not None, public
    assert (
        detail == "RuntimeError: CUDA error: an illegal memory access at /opt/torch/kernels.cu:12"
    )
    assert failure_summary(failed.error, failed.id) == public
    # The operator finds the log line, with its traceback, by the reference the user saw.
    (line,) = [r for r in caplog.records if match[1] in r.getMessage()]
    assert line.getMessage() == f"job {job.id} failed (reference {match[1]}): {detail}"
    assert line.exc_info is not None
