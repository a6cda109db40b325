"""``imagine replay``: a stored job rendered again from its record equals the stored images."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpu_worker.tiny import write_tiny_model
from imagine.cli import main
from storage.contract import GenerationRequest, JobKind, JobSpec
from storage.db import Database
from storage.edits import region
from storage.images import FileImageStore
from storage.migrate import upgrade
from storage.queue import JobQueue


def _enqueue_region_edit(url: str, data: Path, request: GenerationRequest, parent: int) -> int:
    """A Vary (Region) job of image 1 of ``parent``, with a painted mask in the image store."""

    async def go() -> int:
        db = await Database.open(url)
        try:
            queue = JobQueue(db)
            source = next(r for r in await queue.images(parent) if r.index == 0)
            mask = Image.new("L", (source.width, source.height), 0)
            mask.paste(255, (8, 8, 40, 40))
            out = io.BytesIO()
            mask.save(out, format="PNG")
            stored = await FileImageStore(data / "images").put(out.getvalue(), ".png")
            edit = region(source.sha256, (source.width, source.height), stored.sha256)
            spec = JobSpec(
                JobKind.INPAINT,
                request,
                cost=4,
                parent_job_id=parent,
                parent_index=0,
                strength=0.99,
                edit=edit,
            )
            (job,) = await queue.enqueue(7, [spec], interaction_id=3)
            return job.id
        finally:
            await db.close()

    return asyncio.run(go())


def _enqueue(url: str, spec: JobSpec, interaction_id: int) -> int:
    async def go() -> int:
        db = await Database.open(url)
        try:
            (job,) = await JobQueue(db).enqueue(7, [spec], interaction_id=interaction_id)
            return job.id
        finally:
            await db.close()

    return asyncio.run(go())


def test_replay_reproduces_grids_and_variations_bit_for_bit(
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite+aiosqlite:///{data / 'imagine.db'}"
    upgrade(url)
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(data))
    monkeypatch.setenv("IMAGINE_MODEL", str(tiny_model_dir))
    monkeypatch.delenv("IMAGINE_DATABASE_URL", raising=False)

    request = GenerationRequest(
        prompt="a fox", segments=(("a fox", 1.0),), steps=3, seed=11, chaos=40, weird=300
    )
    grid = _enqueue(url, JobSpec(JobKind.IMAGINE, request, cost=4), 1)
    assert main(["worker", "--once"]) == 0
    variation = _enqueue(
        url,
        JobSpec(
            JobKind.VARIATION, request, cost=4, parent_job_id=grid, parent_index=1, strength=0.85
        ),
        2,
    )
    assert main(["worker", "--once"]) == 0
    capsys.readouterr()

    out = tmp_path / "replayed"
    assert main(["replay", str(grid), "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["job_id"] == grid and report["equal"] is True
    assert report["model"] == str(tiny_model_dir)
    assert [(i["index"], i["seed"], i["equal"]) for i in report["images"]] == [
        (-1, 11, True),
        (0, 11, True),
        (1, 12, True),
        (2, 13, True),
        (3, 14, True),
    ]
    for image in report["images"]:
        assert (image["max_abs_diff"], image["differing_pixels"]) == (0, 0.0)
        # Same pixels, same encoder: the PNG is the stored blob byte for byte.
        assert image["replayed_sha256"] == image["stored_sha256"]
    assert sorted(p.name for p in out.iterdir()) == [
        f"{grid}-1.png",
        f"{grid}-2.png",
        f"{grid}-3.png",
        f"{grid}-4.png",
        f"{grid}-grid.png",
    ]

    assert main(["replay", str(variation)]) == 0
    assert json.loads(capsys.readouterr().out)["equal"] is True

    # An edit is rebuilt from its stored source and mask, as the worker built it.
    edited = _enqueue_region_edit(url, data, request, grid)
    assert main(["worker", "--once"]) == 0
    capsys.readouterr()
    assert main(["replay", str(edited)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["equal"] is True and len(report["images"]) == 5

    assert main(["replay", "99"]) == 2
    assert capsys.readouterr().err.strip() == "imagine replay: There is no job 99."


def test_replay_with_another_model_reports_how_far_apart(
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite+aiosqlite:///{data / 'imagine.db'}"
    upgrade(url)
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(data))
    monkeypatch.setenv("IMAGINE_MODEL", str(tiny_model_dir))
    monkeypatch.delenv("IMAGINE_DATABASE_URL", raising=False)
    request = GenerationRequest(prompt="an owl", segments=(("an owl", 1.0),), steps=2, seed=5)
    job = _enqueue(url, JobSpec(JobKind.IMAGINE, request, cost=4), 1)
    assert main(["worker", "--once"]) == 0
    cancelled = _enqueue(url, JobSpec(JobKind.IMAGINE, request, cost=4), 2)
    asyncio.run(_cancel(url, cancelled))
    capsys.readouterr()

    # The same configuration name, other weights: what a silently swapped checkpoint looks like.
    other = write_tiny_model(tmp_path / "other-model", seed=1)
    monkeypatch.setenv("IMAGINE_MODEL", str(other))
    assert main(["replay", str(job), "--out", str(tmp_path / "out")]) == 3
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["equal"] is False
    for image in report["images"]:
        assert image["equal"] is False
        assert image["max_abs_diff"] > 0 and 0 < image["differing_pixels"] <= 1
        assert image["mean_abs_diff"] > 0
    assert captured.err.strip() == (
        f"imagine replay: job {job}: images -1, 0, 1, 2, 3 differ from the stored ones "
        "(index -1 is the grid)"
    )
    # The numbers describe the files written.
    stored = json.loads(_show(job, capsys))["images"][1]["path"]
    with Image.open(stored) as a, Image.open(tmp_path / "out" / f"{job}-1.png") as b:
        diff = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
    assert int(diff.max()) == report["images"][1]["max_abs_diff"]

    # A job without images has nothing to compare with.
    assert main(["replay", str(cancelled)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"imagine replay: job {cancelled} is cancelled; only succeeded jobs have images to compare"
    )


async def _cancel(url: str, job_id: int) -> None:
    db = await Database.open(url)
    try:
        await JobQueue(db).request_cancel(job_id)
    finally:
        await db.close()


def _show(job_id: int, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["jobs", "show", str(job_id), "--json"]) == 0
    return capsys.readouterr().out
