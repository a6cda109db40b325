"""Image store throughput and latency: the file store against the S3 store on loopback.

Both stores get the same distinct 1024x1024 PNGs (about 2 MB each, like rendered images; PNG
encoding is not timed): puts, then gets of what was put, once one at a time and once with
``--concurrency`` requests in flight. Then the worker duty cycle (``bench.duty_cycle``: a
saturated queue, a stand-in device holding ``--hold`` s per job, real PNG encoding, the grid and
the database) with each store in the same run; target: S3 within 2 points of the file store.

The S3 server is moto's server mode on 127.0.0.1 (started here), or any S3-compatible endpoint
with ``--endpoint URL --bucket NAME`` and the standard ``AWS_*`` variables; during the duty
cycle moto runs at niceness 19, standing in for a store on other hosts. Prints one JSON object.

    python -m bench.store [--images 40] [--concurrency 4] [--jobs 20] [--hold 1.0] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.duty_cycle import SIZE, HoldingDevice
from bench.duty_cycle import measure as duty_cycle
from storage.images import FileImageStore, ImageStore
from storage.s3 import S3ImageStore, parse_location

TARGET_POINTS = 2.0
SERVER_NICENESS = 19


def pngs(count: int) -> list[bytes]:
    """``count`` distinct 1024x1024 PNGs that compress like rendered images."""
    base = HoldingDevice(0.0).base
    out = []
    for n in range(count):
        array = base[n % len(base)].copy()
        array[0, :8, 0] = np.frombuffer(n.to_bytes(8, "little"), np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
        out.append(buffer.getvalue())
    return out


async def timed(
    operations: list[Callable[[], Awaitable[Any]]], concurrency: int, megabytes: float
) -> dict[str, float]:
    """Run the operations ``concurrency`` at a time: throughput and latency percentiles."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(operation: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            started = time.perf_counter()
            await operation()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(operation) for operation in operations))
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "ops_per_second": round(len(operations) / wall, 2),
        "mb_per_second": round(megabytes / wall, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        # Nearest rank.
        "p95_ms": round(1000 * latencies[math.ceil(0.95 * len(latencies)) - 1], 1),
    }


async def store_figures(store: ImageStore, data: list[bytes], concurrency: int) -> dict[str, Any]:
    """Put/get figures, one at a time and ``concurrency`` at a time (fresh bytes for each)."""
    half = len(data) // 2
    rounds = (
        ("sequential", data[:half], 1),
        (f"concurrent_{concurrency}", data[half:], concurrency),
    )
    figures: dict[str, Any] = {}
    for label, batch, parallel in rounds:
        megabytes = sum(len(png) for png in batch) / 1e6
        digests = [(await asyncio.to_thread(_sha256, png)) for png in batch]
        puts = await timed([_bound(store.put, png) for png in batch], parallel, megabytes)
        gets = await timed([_bound(store.get, d) for d in digests], parallel, megabytes)
        figures[label] = {"put": puts, "get": gets}
    return figures


def _bound(method: Callable[[Any], Awaitable[Any]], arg: Any) -> Callable[[], Awaitable[Any]]:
    return lambda: method(arg)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data = await asyncio.to_thread(pngs, args.images)
    server = None
    if args.endpoint:
        bucket, endpoint = args.bucket, args.endpoint
        access, secret = (
            os.environ.get("AWS_ACCESS_KEY_ID"),
            os.environ.get("AWS_SECRET_ACCESS_KEY"),
        )
    else:
        from tests.s3server import S3Server

        server = await asyncio.to_thread(S3Server.start)
        bucket, endpoint = await asyncio.to_thread(server.new_bucket, "bench"), server.endpoint_url
        access, secret = server.access_key_id, server.secret_access_key

    def s3_store(prefix: str) -> S3ImageStore:
        return S3ImageStore(
            parse_location(f"s3://{bucket}/{prefix}"),
            endpoint_url=endpoint,
            region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            access_key_id=access,
            secret_access_key=secret,
        )

    try:
        with tempfile.TemporaryDirectory() as tmp:
            file_store = FileImageStore(Path(tmp) / "images")
            s3 = s3_store(f"bench-{time.time_ns()}")
            try:
                await s3.check()
                stores = {
                    "file": await store_figures(file_store, data, args.concurrency),
                    "s3": await store_figures(s3, data, args.concurrency),
                }
                if server is not None:
                    # A real object store runs on other hosts: here its CPU time must not be
                    # taken from the worker whose device time is measured.
                    os.setpriority(os.PRIO_PROCESS, server.process.pid, SERVER_NICENESS)
                # Alternated, so a change in the machine's load hits both stores alike.
                duty: dict[str, list[dict[str, Any]]] = {"file": [], "s3": []}
                for _ in range(args.rounds):
                    duty["file"].append(await duty_cycle(args.jobs, args.hold, None))
                    duty["s3"].append(await duty_cycle(args.jobs, args.hold, None, images=s3))
            finally:
                await s3.close()
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)
    keep = ("busy_fraction", "busy_fraction_with_tail", "median_gap_ms", "max_gap_ms")
    summary: dict[str, dict[str, Any]] = {
        name: {key: round(statistics.mean(float(r[key]) for r in runs), 4) for key in keep}
        | {
            "succeeded": sum(int(r["succeeded"]) for r in runs),
            "rounds": [r["busy_fraction"] for r in runs],
        }
        for name, runs in duty.items()
    }
    points = round(100 * (summary["file"]["busy_fraction"] - summary["s3"]["busy_fraction"]), 2)
    return {
        "benchmark": "store",
        "s3_server": "moto (127.0.0.1)" if server is not None else endpoint,
        "s3_server_niceness_in_duty_cycle": SERVER_NICENESS if server is not None else None,
        "image_size": SIZE,
        "images": len(data),
        "mean_png_mb": round(sum(map(len, data)) / len(data) / 1e6, 2),
        "stores": stores,
        "duty_cycle": {
            "jobs_per_round": args.jobs,
            "hold_seconds": args.hold,
            **summary,
            "s3_below_file_points": points,
            "target_points": TARGET_POINTS,
            "target_met": points <= TARGET_POINTS,
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--images", type=int, default=40, help="PNGs per store (half sequential)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=20, help="duty cycle jobs per store")
    parser.add_argument("--hold", type=float, default=1.0, help="device seconds per job")
    parser.add_argument("--rounds", type=int, default=2, help="duty cycle rounds per store")
    parser.add_argument("--endpoint", help="an S3-compatible endpoint instead of moto")
    parser.add_argument("--bucket", help="the bucket to use at --endpoint")
    args = parser.parse_args()
    if args.endpoint and not args.bucket:
        parser.error("--endpoint needs --bucket")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
