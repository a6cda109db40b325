"""``python -m bench.gpu``: "no CUDA" without a GPU, and the whole harness on the CPU.

The harness test checks what the report contains, never how fast anything was.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gpu_worker.flops import unet_flops

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, object] = json.loads(done.stdout)
    return report


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_and_exits_0() -> None:
    assert bench() == {"benchmark": "gpu", "error": "no CUDA"}


@pytest.mark.slow
def test_harness_runs_each_variant_in_its_own_process_on_cpu(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    report = bench(
        "--device", "cpu", "--model", str(tiny_model_dir), "--steps", "2",
        "--variants", "eager,fused_qkv", "--samples", "1", "--threads", "1",
        "--peak-tflops", "1", "--out", str(out),
    )  # fmt: skip
    assert json.loads(out.read_text()) == report
    variants = report["variants"]
    assert isinstance(variants, dict) and set(variants) == {"eager", "fused_qkv"}
    for name, variant in variants.items():
        assert variant["status"] == "ok", (name, variant)
        assert variant["rendered"] == "64x64" and variant["recompiles"] == 0
        assert 0 < variant["vae_decode_share"] < 1
        assert 0 < variant["mfu"] < variant["mfu_denoise"]
        for key in ("grid_seconds", "single_seconds", "first_grid_seconds", "peak_rss_gib"):
            assert variant[key] > 0, key
    assert variants["fused_qkv"]["settings"]["fuse_qkv"] is True
    assert variants["eager"]["settings"]["channels_last"] is False
    turbo = report["turbo"]
    assert isinstance(turbo, dict) and turbo["steps"] == 4 and turbo["grid_seconds"] > 0
    # The FLOPs are the formula's for the size the tiny model renders (8x8 latents).
    config = json.loads((tiny_model_dir / "unet" / "config.json").read_text())
    flops = report["flops"]
    assert isinstance(flops, dict)
    assert flops["unet_flop_per_sample"] == unet_flops(config, 8, 8).total
    assert report["peak_source"] == "--peak-tflops"
