"""Where a GPU stands: seconds per SDXL grid for each fast-path variant, memory, MFU. One JSON.

For each variant, in its own process (clean memory peaks, cold compile), through the worker's
own code path (settings -> model registry -> engine warm-up -> engine renders):

- ``eager``: the default dtype (fp16 on CUDA), PyTorch's SDPA attention, nothing else;
- ``channels_last``: + UNet and VAE weights channels-last;
- ``fused_qkv``: + fused attention projections; the turbo grid is measured here;
- ``bf16``: channels-last and fused, in bfloat16;
- ``compiled``: channels-last, fused, and ``torch.compile`` of the UNet (``--compile-mode``,
  default ``default``: inductor kernels without CUDA graphs or autotuning, which keeps the
  compile within the time budget; the worker's ``compile_mode`` setting offers the others).

Each reports seconds per 1024x1024 grid (4 images, 30 steps, guidance 7, so 8 UNet samples
per step) and per single image, the share of a grid spent after the last denoising step (VAE decode
and image conversion), peak GPU memory, the time from process start to the first finished grid
(imports, loading, fast path, warm-up and any compilation included), and MFU:
UNet FLOPs per sample (``gpu_worker.flops``, from the model's own config) x samples per step x
steps / seconds / the card's peak dense bf16 rate (the table below, or ``--peak-tflops``). The
turbo grid is 4 steps at guidance 0 with Euler trailing timesteps on the same model (no turbo
profile is configured). The whole run keeps to ``--budget`` seconds (450: under 8 minutes on an
H100/H200 with the default model already written); each variant gets a time limit, and one
that runs out reports what it measured so far.

    python -m bench.gpu [--model DIR] [--device cuda] [--budget 450] [--compile-mode default]
                        [--peak-tflops X] [--out FILE]

``--model`` defaults to the full-size random SDXL (``imagine tiny-model DIR --full-size``) in
``~/.cache/imagine/sdxl-base-random``, written there first if missing. Without CUDA and
without ``--device`` it prints ``{"benchmark": "gpu", "error": "no CUDA"}`` and exits 0;
``--device cpu --model DIR`` runs the same measurements on the CPU (the tiny model fits).
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402

from gpu_worker.flops import FORMULA, unet_flops  # noqa: E402
from gpu_worker.imaging import scale_size  # noqa: E402
from storage.contract import GenerationRequest  # noqa: E402
from storage.sampling import sampling_plan  # noqa: E402

DEFAULT_MODEL = Path("~/.cache/imagine/sdxl-base-random").expanduser()
SIZE = (1024, 1024)
# The guidance of a default request (--stylize 100), as the engine will use it.
GUIDANCE = sampling_plan(GenerationRequest(prompt="x", segments=(("x", 1.0),))).guidance_scale
# Peak dense (no sparsity) bf16 tensor rates in TFLOP/s, from the vendors' data sheets,
# matched in order against torch.cuda.get_device_name (more specific names first).
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200 NVL", 835.0),
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100", 989.0),
    ("H800", 989.0),
    ("H20", 148.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("RTX 4090", 165.0),
    ("RTX 3090", 71.0),
    ("RTX A6000", 155.0),
)
# name, settings beyond the base, time limit (s) and the reserve each later variant keeps.
VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("eager", {}),
    ("channels_last", {"channels_last": True}),
    ("fused_qkv", {"channels_last": True, "fuse_qkv": True}),
    ("bf16", {"channels_last": True, "fuse_qkv": True, "dtype": "bfloat16"}),
    ("compiled", {"channels_last": True, "fuse_qkv": True, "compile": True}),
)
EAGER_LIMIT, EAGER_RESERVE, COMPILED_MINIMUM = 110.0, 45.0, 120.0


def peak_tflops(device_name: str) -> tuple[float | None, str]:
    """The card's peak dense bf16 TFLOP/s from the table, and where the figure came from."""
    for pattern, tflops in PEAK_BF16_TFLOPS:
        if pattern.lower() in device_name.lower():
            return tflops, f"table: {pattern}"
    return None, f"{device_name!r} is not in the table; pass --peak-tflops"


def model_flops(model: Path, size: tuple[int, int]) -> dict[str, Any]:
    """UNet FLOPs per sample at the size the engine renders ``size`` at on this model."""
    unet = json.loads((model / "unet" / "config.json").read_text())
    vae = json.loads((model / "vae" / "config.json").read_text())
    factor = 2 ** (len(vae["block_out_channels"]) - 1)
    sample = unet["sample_size"]
    native = (sample if isinstance(sample, int) else max(sample)) * factor
    width, height = scale_size(*size, native, factor)
    count = unet_flops(unet, height // factor, width // factor)
    return {
        "formula": FORMULA,
        "rendered": f"{width}x{height}",
        "unet_flop_per_sample": count.total,
        "unet_tflop_per_sample": round(count.total / 1e12, 6),
        "conv_linear_attention_tflop": [
            round(part / 1e12, 6) for part in (count.conv, count.linear, count.attention)
        ],
        "samples_per_step": {"grid": 8 if GUIDANCE > 1 else 4, "single": 2 if GUIDANCE > 1 else 1},
    }


def run_variant(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run one variant's process within its time limit; its last JSON line, or why none."""
    command = [sys.executable, "-m", "bench._gpu_run", json.dumps(spec)]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        out, _ = process.communicate(timeout=spec["time_limit"])
    except subprocess.TimeoutExpired:
        # The whole group: inductor compiles in worker processes of its own.
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
        report = _last_json(out) or {}
        report["status"] = f"stopped at its {spec['time_limit']:.0f} s limit"
    else:
        report = _last_json(out) or {}
        if report.get("status", "running") == "running":
            report["status"] = f"died (exit {process.returncode}); see its log above"
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    return report


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def add_rates(
    report: dict[str, Any], flops: dict[str, Any], steps: int, peak: float | None
) -> None:
    """MFU of the grid (end to end and denoising only) and of the single image."""
    per_sample = flops["unet_flop_per_sample"]
    samples = flops["samples_per_step"]
    for key, seconds_key, kind in (
        ("mfu", "grid_seconds", "grid"),
        ("mfu_denoise", "denoise_seconds", "grid"),
        ("mfu_single", "single_seconds", "single"),
    ):
        seconds = report.get(seconds_key)
        if seconds and peak:
            report[key] = round(per_sample * samples[kind] * steps / seconds / (peak * 1e12), 4)


def main(argv: list[str] | None = None) -> int:
    """Run every variant within the budget and print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help=f"diffusers SDXL directory ({DEFAULT_MODEL})")
    parser.add_argument("--device", help="cuda, cuda:N or cpu (default: cuda when available)")
    parser.add_argument("--dtype", help="base dtype (default: float16 on CUDA, float32 on CPU)")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for everything")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--turbo-steps", type=int, default=4)
    parser.add_argument("--compile-mode", default="default")
    parser.add_argument("--threads", type=int, help="torch CPU threads (CPU runs)")
    parser.add_argument(
        "--samples", type=int, help="grids and single images timed per variant (default 1-2)"
    )
    parser.add_argument("--peak-tflops", type=float, help="the card's peak dense bf16 TFLOP/s")
    parser.add_argument(
        "--variants", help="comma-separated subset of: " + ", ".join(name for name, _ in VARIANTS)
    )
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"benchmark": "gpu"}
    if args.device is None and not torch.cuda.is_available():
        result["error"] = "no CUDA"
        return _finish(result, args.out)
    device = args.device or "cuda"
    cuda = device.startswith("cuda")
    model: Path = args.model or DEFAULT_MODEL
    result["model"] = str(model)
    if not (model / "model_index.json").is_file():
        from gpu_worker.fullsize import write_sdxl

        print(f"bench.gpu: writing the full-size random SDXL to {model}", file=sys.stderr)
        built = time.perf_counter()
        write_sdxl(model, device=device)
        result["model_built_seconds"] = round(time.perf_counter() - built, 1)
    flops = model_flops(model, SIZE)
    result.update(
        {
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "size": f"{SIZE[0]}x{SIZE[1]}",
            "images": 4,
            "steps": args.steps,
            "guidance": GUIDANCE,
            "compile_mode": args.compile_mode,
            "inductor_cache": "cold (a fresh cache directory for this run)",
            "flops": flops,
        }
    )
    base = {
        "device": device,
        "dtype": args.dtype or ("float16" if cuda else "float32"),
        # Explicit, so "eager" is plain whatever the worker's defaults become.
        "channels_last": False,
        "fuse_qkv": False,
        "compile": False,
        "compile_mode": args.compile_mode,
        "size_buckets": [f"{SIZE[0]}x{SIZE[1]}"],
        "warmup": True,
    }
    wanted = args.variants.split(",") if args.variants else [name for name, _ in VARIANTS]
    unknown = sorted(set(wanted) - {name for name, _ in VARIANTS})
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {[n for n, _ in VARIANTS]}")
    chosen = [(name, extra) for name, extra in VARIANTS if name in wanted]
    cache = tempfile.mkdtemp(prefix="bench-gpu-inductor-")
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "TRITON_CACHE_DIR": cache + "/triton"}
    variants: dict[str, Any] = {}
    for index, (name, extra) in enumerate(chosen):
        left = args.budget - (time.perf_counter() - START)
        later = chosen[index + 1 :]
        reserve = sum(COMPILED_MINIMUM if "compile" in e else EAGER_RESERVE for _, e in later)
        limit = left - reserve if "compile" in extra else min(EAGER_LIMIT, left - reserve)
        settings = {**base, **extra}
        if limit < (COMPILED_MINIMUM if "compile" in extra else 20):
            variants[name] = {"settings": settings, "status": "skipped: time budget spent"}
            continue
        spec = {
            "model": str(model),
            "settings": settings,
            "size": SIZE,
            "steps": args.steps,
            # The baseline and the compiled UNet get two samples each, the others one: GPU
            # timings vary by a percent or so, and the compile needs the time.
            "grids": args.samples or (2 if name in ("eager", "compiled") else 1),
            "singles": args.samples or (2 if name in ("eager", "compiled") else 1),
            "turbo_steps": args.turbo_steps if name == "fused_qkv" else 0,
            "time_limit": limit,
            "threads": args.threads,
        }
        print(f"bench.gpu: {name} (limit {limit:.0f} s)", file=sys.stderr, flush=True)
        report = run_variant(spec, env)
        report["settings"] = settings
        variants[name] = report
    device_name = next((v["device_name"] for v in variants.values() if "device_name" in v), device)
    peak, source = (
        (args.peak_tflops, "--peak-tflops") if args.peak_tflops else peak_tflops(device_name)
    )
    result["device"] = device_name
    result["peak_bf16_tflops"] = peak
    result["peak_source"] = source
    for report in variants.values():
        add_rates(report, flops, args.steps, peak)
    result["variants"] = variants
    eager = variants.get("eager", {}).get("grid_seconds")
    result["speedup_vs_eager"] = {
        name: round(eager / report["grid_seconds"], 3)
        for name, report in variants.items()
        if eager and report.get("grid_seconds") and name != "eager"
    }
    turbo = variants.get("fused_qkv", {}).get("turbo")
    if turbo:
        result["turbo"] = turbo
    result["wall_seconds"] = round(time.perf_counter() - START, 1)
    return _finish(result, args.out)


def _finish(result: dict[str, Any], out: Path | None) -> int:
    text = json.dumps(result, indent=1)
    print(text)
    if out is not None:
        out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
