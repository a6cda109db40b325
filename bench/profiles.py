"""Speed profiles, LoRA switching, optional components and model families on the tiny models
(CPU), as one JSON.

- ``profiles``: seconds per 4-image grid with the default profile (30 steps, as the parser sets
  at ``--quality 1``) and with the turbo profile (its distilled UNet, 2 steps); the ratio should
  come near the step ratio, less the fixed cost of text encoding and VAE decoding.
- ``lora``: the cost of switching a LoRA style on and off around a job (``set_adapters`` /
  ``disable_lora``), per job, against a 30-step grid (target at most 5%); also the grid time with
  the style active (the LoRA's own extra compute).
- ``families``: seconds per 4-image grid on the tiny SDXL and on the tiny Stable Cascade (its
  prior at the same step count, then its fixed 10 decoder steps), both through ``Engine.render``.
  The tiny models' sizes differ (64 px and 128 px native), so this compares the code paths'
  cost on CPU, not the architectures' FLOPs per pixel.
- ``memory``: peak process RSS after a txt2img grid, after a ControlNet grid (the ControlNet
  loaded beside the model), and after an IP-Adapter grid (adapter and image encoder loaded).

    python -m bench.profiles [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from gpu_worker.engine import Engine
from gpu_worker.lora import Adapter
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderTask
from gpu_worker.tiny import write_tiny_model
from gpu_worker.tiny_cascade import write_tiny_cascade
from gpu_worker.tiny_extras import write_extras
from imagine.settings import Settings
from storage.contract import Control, ControlKind, GenerationRequest, SpeedMode

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


def request(**changes: Any) -> GenerationRequest:
    return GenerationRequest(prompt=PROMPT, segments=((PROMPT, 1.0),), **changes)


def profiles(engine: Engine, repeats: int) -> dict[str, Any]:
    default = request(steps=30)
    turbo = request(steps=30, mode=SpeedMode.TURBO)
    turbo_steps = engine.features.extras.profiles["turbo"].steps
    default_s = timed(lambda: engine.render(RenderTask(default, seed=1)), repeats)
    turbo_s = timed(lambda: engine.render(RenderTask(turbo, seed=1)), repeats)
    # Text encoding, latents and the VAE decode cost the same whatever the steps (on the tiny
    # model a large share of a grid, on SDXL a small one): a 1-step and a 2-step grid give it.
    one = timed(lambda: engine.render(RenderTask(request(steps=1), seed=1)), repeats)
    two = timed(lambda: engine.render(RenderTask(request(steps=2), seed=1)), repeats)
    fixed_s = max(0.0, 2 * one - two)
    return {
        "default_steps": 30,
        "turbo_steps": turbo_steps,
        "default_seconds_per_grid": round(default_s, 4),
        "turbo_seconds_per_grid": round(turbo_s, 4),
        "speedup": round(default_s / turbo_s, 2),
        "step_ratio": round(30 / turbo_steps, 2),
        "fixed_seconds_per_grid": round(fixed_s, 4),
        "speedup_of_the_steps": round((default_s - fixed_s) / max(1e-9, turbo_s - fixed_s), 2),
    }


def lora(engine: Engine, repeats: int) -> dict[str, Any]:
    plain = request(steps=30)
    styled = request(steps=30, loras=(("tiny-style", 1.0),))
    grid_s = timed(lambda: engine.render(RenderTask(plain, seed=2)), repeats)
    styled_s = timed(lambda: engine.render(RenderTask(styled, seed=2)), repeats)
    base = engine.registry.get(None)
    adapters = engine.features.adapters(base)
    style = engine.features.extras.loras["tiny-style"]
    adapter = Adapter("style-tiny-style", style.path, 1.0)

    def switch() -> None:
        # What one styled job followed by a plain one costs in switching, beyond rendering.
        adapters.use(base.txt2img, [adapter])
        adapters.use(base.txt2img, [])

    switch_s = timed(switch, max(repeats, 20))
    return {
        "grid_seconds": round(grid_s, 4),
        "grid_with_style_seconds": round(styled_s, 4),
        "switch_seconds_per_job": round(switch_s / 2, 6),
        "switch_share_of_grid": round(switch_s / 2 / grid_s, 4),
        "target_share": 0.05,
        "loads": adapters.loads,
    }


def families(model_dir: Path, tmp: Path, threads: int, repeats: int) -> dict[str, Any]:
    cascade_dir = write_tiny_cascade(tmp / "tiny-cascade")
    settings = Settings.load(
        {}, model=str(model_dir), model_aliases={"cascade": str(cascade_dir)}, data_dir=tmp
    )
    engine = Engine(ModelRegistry(settings.engine()), cpu_threads=threads)
    steps = 20
    sdxl = request(steps=steps)
    cascade = request(steps=steps, model="cascade")
    sdxl_s = timed(lambda: engine.render(RenderTask(sdxl, seed=4)), repeats)
    cascade_result = engine.render(RenderTask(cascade, seed=4))
    cascade_s = timed(lambda: engine.render(RenderTask(cascade, seed=4)), repeats)
    return {
        "steps": steps,
        "sdxl_seconds_per_grid": round(sdxl_s, 4),
        "cascade_seconds_per_grid": round(cascade_s, 4),
        "cascade_decoder_steps": cascade_result.info["decoder_steps"],
        "cascade_image_size": [cascade_result.width, cascade_result.height],
    }


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def memory(engine: Engine) -> dict[str, Any]:
    source = Image.new("RGB", (64, 64), "black")
    ImageDraw.Draw(source).rectangle((12, 12, 50, 40), fill="white")
    engine.render(RenderTask(request(steps=4), seed=3))
    txt2img = peak_rss_mb()
    control = request(steps=4, control=Control(ControlKind.CANNY, 0.5))
    engine.render(RenderTask(control, seed=3, init_images=(source,)))
    with_control = peak_rss_mb()
    engine.render(RenderTask(request(steps=4), seed=3, init_images=(source,)))
    with_ip = peak_rss_mb()
    return {
        "rss_txt2img_mb": txt2img,
        "rss_with_controlnet_mb": with_control,
        "controlnet_increase_percent": round(100 * (with_control - txt2img) / txt2img, 2),
        "rss_with_controlnet_and_ip_adapter_mb": with_ip,
        "ip_adapter_increase_percent": round(100 * (with_ip - with_control) / with_control, 2),
    }


def main() -> None:
    """Run the four measurements and print their JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = write_tiny_model(Path(tmp) / "tiny")
        config = write_extras(model_dir)
        settings = Settings.load({}, config_file=config, data_dir=Path(tmp))
        engine = Engine(ModelRegistry(settings.engine()), cpu_threads=args.threads)
        engine.prepare()
        report = {
            "benchmark": "profiles",
            "torch_threads": args.threads,
            # Memory first, before the other measurements load anything more.
            "memory": memory(engine),
            "profiles": profiles(engine, args.repeats),
            "lora": lora(engine, args.repeats),
            "families": families(model_dir, Path(tmp), args.threads, args.repeats),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
