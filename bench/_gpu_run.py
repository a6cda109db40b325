"""One variant of ``bench.gpu`` in its own process: load, warm up, time grids and single images.

Run by ``bench.gpu`` as ``python -m bench._gpu_run SPEC_JSON``; prints its results as one JSON
line after every finished measurement (the parent keeps the last line, so a variant stopped by
its time limit still reports what it measured). Everything goes through the worker's own path:
``Settings`` -> ``ModelRegistry`` -> ``Engine.prepare`` (fast path, warm-up) -> ``Engine.render``.
"""

from __future__ import annotations

import time

# First thing, so "first grid after start" includes importing torch and diffusers.
START = time.perf_counter()

import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

from gpu_worker.engine import Engine  # noqa: E402
from gpu_worker.models import LoadedModel, ModelRegistry  # noqa: E402
from gpu_worker.task import RenderTask, StepEvent  # noqa: E402
from imagine.settings import Settings  # noqa: E402
from storage.contract import GenerationRequest  # noqa: E402

PROMPT = "a lighthouse on a cliff at dusk, dramatic sky, volumetric light"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Times renders, splitting denoising from decoding at the last step's callback."""

    def __init__(self, engine: Engine, model: LoadedModel) -> None:
        self.engine, self.model = engine, model
        self.last_step = 0.0

    def _on_step(self, event: StepEvent) -> None:
        if event.step == event.total:
            _sync(self.model.device)
            self.last_step = time.perf_counter()

    def render(self, request: GenerationRequest, seed: int, images: int) -> dict[str, float]:
        """One render: total seconds, denoising seconds, the decode (VAE + images) share, and
        whether it had to compile (then it is latency, not a sample)."""
        compiles = self.engine.compiles.recompiles
        _sync(self.model.device)
        started = time.perf_counter()
        self.engine.render(
            RenderTask(request, seed=seed, indices=tuple(range(images))), on_step=self._on_step
        )
        _sync(self.model.device)
        total = time.perf_counter() - started
        return {
            "seconds": total,
            "denoise_seconds": self.last_step - started,
            "decode_share": (time.perf_counter() - self.last_step) / total,
            "compiled": float(self.engine.compiles.recompiles > compiles),
        }


def turbo(model: LoadedModel, width: int, height: int, steps: int) -> dict[str, Any]:
    """A 4-image grid at ``steps`` steps, guidance 0, Euler with trailing timesteps."""
    import diffusers

    sdxl: Any = diffusers
    components = dict(model.txt2img.components)
    components["scheduler"] = sdxl.EulerDiscreteScheduler.from_config(
        model.txt2img.scheduler.config, timestep_spacing="trailing"
    )
    # Built from the components, not with from_pipe, which would cast the fp32 VAE to fp16.
    pipe = sdxl.StableDiffusionXLPipeline(**components, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)

    def grid(count: int) -> float:
        generators = [torch.Generator().manual_seed(i) for i in range(4)]
        _sync(model.device)
        started = time.perf_counter()
        assert model.fast is not None
        with model.fast.attention():
            pipe(
                prompt=PROMPT,
                num_images_per_prompt=4,
                num_inference_steps=count,
                guidance_scale=0.0,
                width=width,
                height=height,
                generator=generators,
                output_type="pil",
            )
        _sync(model.device)
        return time.perf_counter() - started

    grid(1)  # the batch of 4 without guidance is a new shape: let kernels be chosen first
    return {
        "profile": "none configured: guidance 0, Euler with trailing timesteps, same model",
        "steps": steps,
        "grid_seconds": round(grid(steps), 4),
    }


def run(spec: dict[str, Any], report: dict[str, Any]) -> None:
    """Measure one variant, updating ``report`` and printing it after every measurement."""
    deadline = START + spec["time_limit"] * 0.92

    def emit() -> None:
        print(json.dumps(report), flush=True)

    settings = Settings.load({}, model=spec["model"], **spec["settings"])
    engine = Engine(ModelRegistry(settings.engine()), cpu_threads=spec.get("threads"))
    engine.prepare()
    model = engine.registry.get()
    report["prepare_seconds"] = round(time.perf_counter() - START, 2)
    report["device_name"] = (
        torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else "cpu"
    )
    memory(report, model.device)
    emit()
    width, height = spec["size"]
    grid_request = GenerationRequest(
        prompt=PROMPT, segments=((PROMPT, 1.0),), width=width, height=height, steps=spec["steps"]
    )
    timer = Timer(engine, model)
    first = timer.render(grid_request, seed=1, images=4)
    report["first_grid_seconds"] = round(time.perf_counter() - START, 2)
    # A grid that compiled (no warm-up, or a shape it missed) is latency, not a sample.
    grids = [] if first["compiled"] else [first]
    if not grids:
        grids.append(timer.render(grid_request, seed=2, images=4))
    rendered = Engine.render_size(model, grid_request)
    report["rendered"] = f"{rendered[0]}x{rendered[1]}"

    def summarise() -> None:
        seconds = [g["seconds"] for g in grids]
        best = min(range(len(grids)), key=lambda i: seconds[i])
        report["grid_seconds"] = round(statistics.median(seconds), 4)
        report["grid_samples"] = [round(s, 4) for s in seconds]
        report["denoise_seconds"] = round(grids[best]["denoise_seconds"], 4)
        report["vae_decode_share"] = round(grids[best]["decode_share"], 4)
        memory(report, model.device)

    summarise()
    emit()
    for seed in range(1 + len(grids), 1 + spec["grids"]):
        if time.perf_counter() + 1.3 * grids[0]["seconds"] > deadline:
            report["note"] = "fewer grid samples: time limit"
            break
        grids.append(timer.render(grid_request, seed=seed, images=4))
        summarise()
        emit()
    singles: list[float] = []
    for seed in range(spec["singles"] + 1):
        if len(singles) == spec["singles"]:
            break
        if time.perf_counter() + 0.6 * grids[0]["seconds"] > deadline:
            break
        single = timer.render(grid_request, seed=10 + seed, images=1)
        if single["compiled"]:
            report["note"] = "the first single image compiled: not a sample"
            continue
        singles.append(single["seconds"])
        report["single_seconds"] = round(statistics.median(singles), 4)
        report["single_samples"] = [round(s, 4) for s in singles]
        memory(report, model.device)
        emit()
    report["recompiles"] = engine.compiles.recompiles
    if spec.get("turbo_steps") and time.perf_counter() + grids[0]["seconds"] < deadline:
        report["turbo"] = turbo(model, rendered[0], rendered[1], spec["turbo_steps"])
    memory(report, model.device)
    report["status"] = "ok"
    emit()


def memory(report: dict[str, Any], device: torch.device) -> None:
    """Peak memory so far: the CUDA allocator's on a GPU, the process's resident set on CPU."""
    if device.type == "cuda":
        report["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        report["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(device) / 2**30, 2)
    else:
        # ru_maxrss is in KiB on Linux.
        report["peak_rss_gib"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2
        )


def main() -> int:
    """Run the variant described by the JSON in ``sys.argv[1]``."""
    spec = json.loads(sys.argv[1])
    report: dict[str, Any] = {"status": "running"}
    try:
        run(spec, report)
    except Exception as exc:
        # One variant failing must not lose the others: report it and let the parent go on.
        traceback.print_exc()
        report["status"] = "failed"
        report["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
        print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
