"""``imagine jobs list|show`` through the real command line, on both databases."""

from __future__ import annotations

import json

from storage.contract import (
    Control,
    ControlKind,
    GenerationRequest,
    JobKind,
    JobSpec,
    StoredImage,
)
from storage.images import FileImageStore
from storage.queue import JobQueue
from tests.storage.test_cli import _imagine

SHA = "ab" * 32


async def _jobs(queue: JobQueue) -> None:
    fox = GenerationRequest(prompt="a red fox", aspect="3:2", width=1216, height=832, seed=7)
    await queue.enqueue(
        42,
        [JobSpec(JobKind.IMAGINE, fox, cost=4, prompt_text="a red fox --ar 3:2 --seed 7")],
        interaction_id=1,
        guild_id=10,
        channel_id=20,
    )
    await queue.set_message_id(1, 30)
    (job,) = await queue.claim("w1")
    await queue.register_worker("w1", "gpu-host", "tiny model")
    images = [StoredImage(i, SHA, 64, 64, 7 + i, 100, f"/x/{i}.png") for i in range(-1, 4)]
    await queue.finish(job.id, "w1", images, gpu_seconds=1.5)
    variation = JobSpec(
        JobKind.VARIATION, fox.with_seed(9), cost=4, parent_job_id=1, parent_index=2, strength=0.85
    )
    await queue.enqueue(42, [variation], interaction_id=2, channel_id=20)
    owl = GenerationRequest(prompt="an owl")
    await queue.enqueue(43, [JobSpec(JobKind.IMAGINE, owl, cost=4)], interaction_id=3)


async def test_jobs_list_and_show(
    queue: JobQueue, image_store: FileImageStore, database_environ: dict[str, str]
) -> None:
    await _jobs(queue)
    env = database_environ

    listed = _imagine("jobs", "list", "--json", environ=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["status"], r["kind"], r["user_id"]) for r in rows] == [
        (3, "queued", "imagine", 43),
        (2, "queued", "variation", 42),
        (1, "succeeded", "imagine", 42),
    ]
    first = rows[2]
    assert first["prompt"] == "a red fox --ar 3:2 --seed 7"
    assert first["message_url"] == "https://discord.com/channels/10/20/30"
    assert (first["worker"], first["gpu_seconds"], first["attempts"]) == ("w1", 1.5, 1)
    assert first["images_purged_at"] is None

    mine = _imagine("jobs", "list", "--user", "42", "--status", "queued", "--json", environ=env)
    assert [r["id"] for r in json.loads(mine.stdout)] == [2]
    text = _imagine("jobs", "list", "--user", "43", environ=env)
    assert text.returncode == 0
    assert text.stdout.splitlines()[1].split()[:4] == ["#3", "queued", "imagine", "43"]
    assert " an owl --seed " in text.stdout

    shown = _imagine("jobs", "show", "1", "--json", environ=env)
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["prompt_text"] == "a red fox --ar 3:2 --seed 7"
    assert detail["request"]["aspect"] == "3:2" and detail["request"]["seed"] == 7
    assert (detail["worker_host"], detail["worker_model"]) == ("gpu-host", "tiny model")
    assert [(i["index"], i["seed"]) for i in detail["images"]] == [
        (-1, 6),
        (0, 7),
        (1, 8),
        (2, 9),
        (3, 10),
    ]
    assert [(e["kind"], e["amount"]) for e in detail["ledger"]] == [("reserve", 4)]
    assert detail["children"] == [2]
    child = json.loads(_imagine("jobs", "show", "2", "--json", environ=env).stdout)
    assert (child["parent_job_id"], child["parent_index"], child["strength"]) == (1, 2, 0.85)
    assert detail["rendered"] is None and child["rendered"] is None

    lines = _imagine("jobs", "show", "1", environ=env).stdout.splitlines()
    assert "status: succeeded" in lines and "prompt_text: a red fox --ar 3:2 --seed 7" in lines
    assert "ledger:" in lines and any(line.strip().startswith("1 reserve +4") for line in lines)
    assert lines[lines.index("painted with:") + 1] == "  (not recorded)"


async def test_jobs_show_says_what_painted_the_job(
    queue: JobQueue, database_environ: dict[str, str]
) -> None:
    fox = GenerationRequest(
        prompt="一只红色的狐狸",
        segments=(("一只红色的狐狸", 1.0),),
        negative_prompt="模糊",
        loras=(("ink-wash", 0.8),),
        control=Control(ControlKind.CANNY, 0.5),
        seed=5,
    )
    await queue.enqueue(42, [JobSpec(JobKind.IMAGINE, fox, cost=4)], interaction_id=1)
    (job,) = await queue.claim("w1")
    # What a worker stores for such a job (gpu_worker.features, gpu_worker.batching).
    rendered = {
        "profile": "turbo",
        "loras": [["ink-wash", 0.8]],
        "control": {"kind": "canny", "scale": 0.5},
        "translation": {
            "prompt": "a red fox",
            "segments": [["a red fox", 1.0]],
            "negative_prompt": "blur",
        },
        "batch": {"jobs": 2, "images": 8},
    }
    images = [StoredImage(i, SHA, 64, 64, 5 + i, 100, f"/x/{i}.png") for i in range(-1, 4)]
    await queue.finish(job.id, "w1", images, gpu_seconds=0.5, rendered=rendered)

    shown = _imagine("jobs", "show", str(job.id), "--json", environ=database_environ)
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["rendered"] == rendered
    as_rendered = "一只红色的狐狸 --seed 5 --lora ink-wash:0.8 --control canny:0.5 --no 模糊"
    assert detail["prompt"] == as_rendered

    text = _imagine("jobs", "show", str(job.id), environ=database_environ).stdout.splitlines()
    start = text.index("painted with:")
    assert text[start + 1 : text.index("images:")] == [
        "  profile: turbo",
        "  styles: ink-wash at 0.8",
        "  ControlNet: canny at scale 0.5",
        "  painted in English: a red fox",
        "  --no in English: blur",
        "  batched: 8 images of 2 jobs in one call",
    ]


def test_jobs_bad_input_is_one_clear_line(database_environ: dict[str, str]) -> None:
    missing = _imagine("jobs", "show", "5", environ=database_environ)
    assert (missing.returncode, missing.stderr.strip()) == (2, "imagine jobs: There is no job 5.")
    status = _imagine("jobs", "list", "--status", "done", environ=database_environ)
    assert status.returncode == 2
    assert status.stderr.strip() == (
        "imagine jobs: job status must be one of queued, running, succeeded, failed, "
        "cancelled; got 'done'"
    )
    empty = _imagine("jobs", "list", environ=database_environ)
    assert (empty.returncode, empty.stdout.strip()) == (0, "no jobs")
