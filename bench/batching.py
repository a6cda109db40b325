"""Batching and queue overhead on the tiny SDXL (CPU), printed as one JSON object.

- ``grid``: a 4-image grid in one batched call vs 4 one-image calls, for plain diffusers and for
  our engine; ``speedup`` is sequential time over batched time. Ours must keep diffusers' gain.
- ``queue``: jobs per second through the queue and the worker loop (SQLite, PNG encoding,
  image store, every DB write) vs bare engine calls on the same requests. Target ratio >= 0.9.
- ``memory``: peak process RSS after a txt2img render, and after img2img and inpainting
  pipelines were built with ``from_pipe`` and used. Target: at most 5% more.
- ``cross_job``: jobs per second at queue depth ``--depth`` (8 compatible grid jobs from 4
  users) through the queue and the worker loop with ``max_batch_jobs`` = depth vs 1, rounds
  alternating, and the bare engine's ``render_batch`` of the 8 jobs vs 8 ``render`` calls;
  ``speedup`` is the median ratio within this run.

    python -m bench.batching [--threads 2] [--repeats 5] [--jobs 12] [--rounds 3] [--depth 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diffusers
import torch
from PIL import Image

from gpu_worker.batching import BatchEngine
from gpu_worker.config import MAX_BATCH_JOBS
from gpu_worker.engine import Engine
from gpu_worker.loop import Worker
from gpu_worker.models import ModelRegistry, make_scheduler
from gpu_worker.task import RenderTask
from gpu_worker.tiny import write_tiny_model
from imagine.settings import Settings
from storage.contract import GenerationRequest, JobKind, JobSpec, JobStatus
from storage.db import Database
from storage.images import FileImageStore
from storage.limits import Limits
from storage.migrate import upgrade
from storage.queue import JobQueue

PROMPT = "a lighthouse at dusk"


def timed(action: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of ``action`` after one warm-up run."""
    action()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def grid_speedups(model_dir: Path, engine: Engine, repeats: int, steps: int) -> dict[str, Any]:
    sdxl: Any = diffusers.StableDiffusionXLPipeline
    pipe = sdxl.from_pretrained(model_dir)
    pipe.scheduler = make_scheduler("dpmpp_2m_karras", pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    size = {"width": 64, "height": 64, "num_inference_steps": steps}

    def plain_batched() -> None:
        gens = [torch.Generator().manual_seed(i) for i in range(4)]
        pipe(PROMPT, num_images_per_prompt=4, generator=gens, **size)

    def plain_sequential() -> None:
        for i in range(4):
            pipe(PROMPT, generator=torch.Generator().manual_seed(i), **size)

    request = GenerationRequest(prompt=PROMPT, segments=((PROMPT, 1.0),), steps=steps)

    def ours_batched() -> None:
        engine.render(RenderTask(request, seed=0))

    def ours_sequential() -> None:
        for i in range(4):
            engine.render(RenderTask(request, seed=0, indices=(i,)))

    results: dict[str, Any] = {"steps": steps}
    for name, batched, sequential in (
        ("diffusers", plain_batched, plain_sequential),
        ("engine", ours_batched, ours_sequential),
    ):
        b, s = timed(batched, repeats), timed(sequential, repeats)
        results[name] = {
            "batched_seconds": round(b, 4),
            "sequential_seconds": round(s, 4),
            "speedup": round(s / b, 2),
        }
    results["engine_keeps"] = round(
        results["engine"]["speedup"] / results["diffusers"]["speedup"], 3
    )
    return results


async def queue_throughput(
    engine: Engine, settings: Settings, jobs: int, rounds: int
) -> dict[str, Any]:
    # The requests users send: the parser's defaults (30 steps), different seeds.
    request = GenerationRequest(prompt=PROMPT, segments=((PROMPT, 1.0),))
    seeds = list(range(100, 100 + jobs))

    def bare_calls() -> float:
        start = time.perf_counter()
        for seed in seeds:
            engine.render(RenderTask(request, seed=seed))
        return time.perf_counter() - start

    async def through_queue(round_: int) -> tuple[float, int]:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'imagine.db'}"
            await asyncio.to_thread(upgrade, url)
            db = await Database.open(url)
            limits = Limits(images=10**6, period="day", max_concurrent=100, max_queued=1000)
            queue = JobQueue(db, limits=limits)
            for n, seed in enumerate(seeds):
                spec = JobSpec(kind=JobKind.IMAGINE, request=request.with_seed(seed), cost=4)
                await queue.enqueue(1, [spec], interaction_id=round_ * 10_000 + n + 1)
            worker = Worker(
                settings.model_copy(update={"data_dir": Path(tmp), "database_url": url}).worker(),
                queue=queue,
                images=FileImageStore(Path(tmp) / "images"),
                engine=engine,
            )
            start = time.perf_counter()
            await worker.run(asyncio.Event(), once=True)
            seconds = time.perf_counter() - start
            done = len(await queue.user_jobs(1, [JobStatus.SUCCEEDED]))
            await db.close()
        return seconds, done

    # Alternate the two (each in a fresh thread, as the worker's device thread is) so that
    # changes in machine load hit both alike.
    ratios, bare_rates, queue_rates, succeeded = [], [], [], 0
    for round_ in range(rounds):
        bare = await asyncio.to_thread(bare_calls)
        queued, done = await through_queue(round_)
        succeeded += done
        ratios.append(bare / queued)
        bare_rates.append(jobs / bare)
        queue_rates.append(jobs / queued)
    return {
        "jobs": jobs,
        "rounds": rounds,
        "steps": request.steps,
        "succeeded": succeeded,
        "bare_jobs_per_second": round(statistics.median(bare_rates), 3),
        "queue_jobs_per_second": round(statistics.median(queue_rates), 3),
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "target": 0.9,
    }


async def cross_job(
    engine: BatchEngine, settings: Settings, depth: int, rounds: int
) -> dict[str, Any]:
    """Jobs per second at queue depth ``depth`` with and without cross-job batching."""
    prompts = ["a lighthouse at dusk", "a red fox", "a calm sea", "a teapot"]
    requests = [
        GenerationRequest(prompt=p, segments=((p, 1.0),)).with_seed(1000 + n)
        for n, p in enumerate(prompts * (depth // len(prompts) + 1))
    ][:depth]
    tasks = [RenderTask(request, seed=request.seed or 0) for request in requests]

    def bare(batched: bool) -> float:
        start = time.perf_counter()
        if batched:
            engine.render_batch(tasks)
        else:
            for task in tasks:
                engine.render(task)
        return time.perf_counter() - start

    async def through_queue(batch: int, round_: int) -> tuple[float, int, int]:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'imagine.db'}"
            await asyncio.to_thread(upgrade, url)
            db = await Database.open(url)
            limits = Limits(images=10**6, period="day", max_concurrent=100, max_queued=1000)
            queue = JobQueue(db, limits=limits)
            for n, request in enumerate(requests):
                spec = JobSpec(kind=JobKind.IMAGINE, request=request, cost=4)
                # Four users, each with two jobs in line: the fair order interleaves them.
                await queue.enqueue(1 + n % 4, [spec], interaction_id=round_ * 10_000 + n + 1)
            update = {"data_dir": Path(tmp), "database_url": url, "max_batch_jobs": batch}
            worker = Worker(
                settings.model_copy(update=update).worker(),
                queue=queue,
                images=FileImageStore(Path(tmp) / "images"),
                engine=engine,
            )
            start = time.perf_counter()
            await worker.run(asyncio.Event(), once=True)
            seconds = time.perf_counter() - start
            done = [
                job
                for user in range(1, 5)
                for job in await queue.user_jobs(user, [JobStatus.SUCCEEDED])
            ]
            shared = sum(1 for job in done if (job.rendered or {}).get("batch"))
            await db.close()
        return seconds, len(done), shared

    bare_ratios, queue_ratios, succeeded, batched_jobs = [], [], 0, 0
    rates: dict[int, list[float]] = {1: [], depth: []}
    for round_ in range(rounds):
        alone, together = await asyncio.to_thread(bare, False), await asyncio.to_thread(bare, True)
        bare_ratios.append(alone / together)
        single, n1, _ = await through_queue(1, 2 * round_)
        batched, n2, shared = await through_queue(depth, 2 * round_ + 1)
        succeeded += n1 + n2
        batched_jobs += shared
        queue_ratios.append(single / batched)
        rates[1].append(depth / single)
        rates[depth].append(depth / batched)
    return {
        "depth": depth,
        "rounds": rounds,
        "steps": requests[0].steps,
        "succeeded": succeeded,
        "jobs_rendered_in_shared_calls": batched_jobs,
        "queue_jobs_per_second_unbatched": round(statistics.median(rates[1]), 3),
        "queue_jobs_per_second_batched": round(statistics.median(rates[depth]), 3),
        "queue_speedup": round(statistics.median(queue_ratios), 3),
        "queue_speedups": [round(r, 3) for r in queue_ratios],
        "engine_speedup": round(statistics.median(bare_ratios), 3),
        "engine_speedups": [round(r, 3) for r in bare_ratios],
    }


def peak_rss() -> int:
    """Peak resident set size of this process, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory(engine: Engine) -> dict[str, Any]:
    model = engine.registry.get()
    request = GenerationRequest(prompt=PROMPT, segments=((PROMPT, 1.0),), steps=4)
    engine.render(RenderTask(request, seed=1))
    before = peak_rss()
    source = Image.new("RGB", (64, 64), (120, 80, 40))
    model.img2img(prompt=PROMPT, image=source, strength=0.5, num_inference_steps=4)
    mask = Image.new("L", (64, 64), 255)
    model.inpaint(prompt=PROMPT, image=source, mask_image=mask, num_inference_steps=4)
    after = peak_rss()
    return {
        "rss_txt2img_mb": round(before / 2**20, 1),
        "rss_with_img2img_and_inpaint_mb": round(after / 2**20, 1),
        "increase_percent": round(100 * (after - before) / before, 2),
        "shared_unet": model.img2img.unet is model.txt2img.unet is model.inpaint.unet,
        "target_percent": 5.0,
    }


def main() -> None:
    """Run the three measurements and print their JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="steps for the grid comparison")
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="bare/queue alternations")
    parser.add_argument("--depth", type=int, default=8, help="queued jobs for cross_job")
    parser.add_argument(
        "--only", choices=("memory", "grid", "queue", "cross_job"), help="one measurement"
    )
    args = parser.parse_args()
    if not 2 <= args.depth <= MAX_BATCH_JOBS:
        parser.error(
            f"--depth must be from 2 to {MAX_BATCH_JOBS} (max_batch_jobs), got {args.depth}"
        )
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_tiny_model(Path(tmp) / "tiny")
        settings = Settings.load({}, model=str(model_dir), data_dir=Path(tmp))
        engine = BatchEngine(ModelRegistry(settings.engine()), cpu_threads=args.threads)
        engine.prepare()
        measurements: dict[str, Callable[[], Any]] = {
            "memory": lambda: memory(engine),
            "grid": lambda: grid_speedups(model_dir, engine, args.repeats, args.steps),
            "queue": lambda: asyncio.run(
                queue_throughput(engine, settings, args.jobs, args.rounds)
            ),
            "cross_job": lambda: asyncio.run(cross_job(engine, settings, args.depth, args.rounds)),
        }
        report: dict[str, Any] = {"benchmark": "batching", "torch_threads": args.threads}
        for name, measure in measurements.items():
            if args.only in (None, name):
                report[name] = measure()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
