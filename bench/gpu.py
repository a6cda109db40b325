"""Seconds per 1024x1024 grid (4 images, 30 steps, fp16) on CUDA, with and without
``torch.compile``, using the configured model (``IMAGINE_MODEL``, real SDXL weights).

Prints one JSON object; on a machine without CUDA it prints "no CUDA" and exits 0.

    python -m bench.gpu [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from gpu_worker.engine import Engine
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderTask
from imagine.settings import Settings
from storage.contract import GenerationRequest

PROMPT = "a lighthouse at dusk, dramatic sky"


def seconds_per_grid(settings: Settings, repeats: int) -> dict[str, Any]:
    engine = Engine(ModelRegistry(settings.engine()))
    engine.prepare()
    request = GenerationRequest(prompt=PROMPT, segments=((PROMPT, 1.0),), steps=30)
    start = time.perf_counter()
    # The first grid pays for kernel selection (and compilation with torch.compile).
    engine.render(RenderTask(request, seed=0))
    first = time.perf_counter() - start
    samples = []
    for seed in range(1, repeats + 1):
        torch.cuda.synchronize()
        start = time.perf_counter()
        engine.render(RenderTask(request, seed=seed))
        torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    model = engine.registry.get()
    del engine
    torch.cuda.empty_cache()
    return {
        "first_grid_seconds": round(first, 2),
        "seconds_per_grid": round(statistics.median(samples), 3),
        "samples": [round(s, 3) for s in samples],
        "dtype": str(model.dtype),
    }


def main() -> int:
    """Run both configurations and print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA")
        return 0
    settings = Settings.load(device="cuda", dtype="float16")
    eager = seconds_per_grid(settings.model_copy(update={"compile": False}), args.repeats)
    compiled = seconds_per_grid(settings.model_copy(update={"compile": True}), args.repeats)
    print(
        json.dumps(
            {
                "benchmark": "gpu",
                "model": settings.model,
                "device": torch.cuda.get_device_name(0),
                "size": "1024x1024",
                "images": 4,
                "steps": 30,
                "eager": eager,
                "compiled": compiled,
                "compile_speedup": round(
                    eager["seconds_per_grid"] / compiled["seconds_per_grid"], 3
                ),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
