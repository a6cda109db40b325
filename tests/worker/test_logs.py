"""``log_format = "json"``: the worker's log is one JSON object per line, with the job's ids."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from storage.contract import GenerationRequest, JobKind, JobSpec
from storage.db import Database
from storage.migrate import upgrade
from storage.queue import JobQueue

ROOT = Path(__file__).resolve().parents[2]


async def _enqueue(url: str) -> int:
    db = await Database.open(url)
    try:
        request = GenerationRequest(prompt="a fox", segments=(("a fox", 1.0),), steps=2)
        spec = JobSpec(kind=JobKind.IMAGINE, request=request, cost=4)
        (job,) = await JobQueue(db).enqueue(77, [spec], interaction_id=1)
        return job.id
    finally:
        await db.close()


def test_worker_json_log_lines_carry_job_user_and_worker_ids(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite+aiosqlite:///{data / 'imagine.db'}"
    upgrade(url)
    job_id = asyncio.run(_enqueue(url))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "IMAGINE_DATA_DIR": str(data),
        "IMAGINE_MODEL": str(tiny_model_dir),
        "IMAGINE_WORKER_ID": "json-worker",
        "IMAGINE_LOG_FORMAT": "json",
        "IMAGINE_WEB_SECRET": "a-web-secret-that-stays-out",
    }
    done = subprocess.run(
        [sys.executable, "-m", "imagine", "worker", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    ready = next(line for line in lines if str(line["message"]).startswith("worker json-worker"))
    assert ready["worker_id"] == "json-worker" and "job_id" not in ready
    finished = next(line for line in lines if line["message"].startswith(f"job {job_id} succeeded"))
    assert (finished["job_id"], finished["user_id"], finished["worker_id"]) == (
        job_id,
        77,
        "json-worker",
    )
    assert "a-web-secret-that-stays-out" not in done.stderr
