"""Fast-path settings: validation and errors, the VAE precision decision, and each optimisation
on the tiny model on CPU (half precisions, channels-last, fused projections)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import FusedAttnProcessor2_0
from pydantic import ValidationError

from gpu_worker.config import parse_size
from gpu_worker.engine import Engine
from gpu_worker.fastpath import (
    FastPath,
    FastPathError,
    nearest_bucket,
    vae_precision,
)
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderTask
from imagine.cli import main
from imagine.settings import SDXL_SIZES, Settings
from storage.contract import JobKind, SpeedMode
from tests.worker.conftest import pixels, request

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def grid(engine: Engine, seed: int = 7, **changes: Any) -> np.ndarray:
    result = engine.render(RenderTask(request(**changes), seed=seed))
    return np.stack([pixels(image) for image in result.images])


def fast_engine(tiny_model_dir: Path, **settings: Any) -> Engine:
    engine = Engine(
        ModelRegistry(Settings.load({}, model=str(tiny_model_dir), **settings).engine()),
        cpu_threads=1,
    )
    engine.prepare()
    return engine


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"IMAGINE_SIZE_BUCKETS": '["1000x1000"]'}, "size_buckets"),
        ({"IMAGINE_SIZE_BUCKETS": '["wide"]'}, "size_buckets"),
        ({"IMAGINE_SIZE_BUCKETS": "[]"}, "size_buckets"),
        ({"IMAGINE_WARMUP_STEPS": "0"}, "warmup_steps"),
        ({"IMAGINE_COMPILE_MODE": "fastest"}, "compile_mode"),
        ({"IMAGINE_SDPA_BACKEND": "flash2"}, "sdpa_backend"),
        ({"IMAGINE_VAE_UPCAST": "never"}, "vae_upcast"),
    ],
)
def test_invalid_fast_path_settings_name_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings.load(environ)


def test_settings_from_the_environment_reach_the_fast_path() -> None:
    settings = Settings.load(
        {
            "IMAGINE_CHANNELS_LAST": "false",
            "IMAGINE_COMPILE": "true",
            "IMAGINE_COMPILE_MODE": "max-autotune-no-cudagraphs",
            "IMAGINE_SIZE_BUCKETS": '["1216x832", "1024x1024"]',
        }
    )
    fast = FastPath.resolve(
        CUDA,
        torch.float16,
        channels_last=settings.channels_last,
        compile=settings.compile,
        compile_mode=settings.compile_mode,
        size_buckets=settings.size_buckets,
    )
    assert fast.channels_last is False and fast.compile and fast.warmup
    assert fast.buckets == ((1216, 832), (1024, 1024))
    assert len(Settings.load({}).size_buckets) == len(SDXL_SIZES) == 13


def test_defaults_are_on_where_safe_only() -> None:
    cpu = FastPath.resolve(CPU, torch.float32)
    assert not (cpu.channels_last or cpu.fuse_qkv or cpu.compile or cpu.warmup)
    cuda = FastPath.resolve(CUDA, torch.float16)
    assert cuda.channels_last and cuda.warmup
    assert not (cuda.fuse_qkv or cuda.compile)
    # Compiling without a warm-up would make the first job of every shape wait for it.
    assert FastPath.resolve(CPU, torch.float32, compile=True).warmup


@pytest.mark.parametrize(
    ("device", "dtype", "options", "message"),
    [
        (CPU, torch.float32, {"sdpa_backend": "flash"}, "'flash' needs a CUDA device"),
        (CPU, torch.bfloat16, {"sdpa_backend": "efficient"}, "'efficient' needs a CUDA device"),
        (CUDA, torch.float32, {"sdpa_backend": "cudnn"}, "needs float16 or bfloat16"),
        (CPU, torch.float32, {"compile": True, "compile_mode": "reduce-overhead"}, "CUDA graphs"),
        (CUDA, torch.float16, {"compile": True, "cpu_offload": True}, "cannot be combined"),
        (CPU, torch.float32, {"size_buckets": ["1024x1000"]}, "multiples of 64"),
        (CPU, torch.float32, {"size_buckets": []}, "size_buckets is empty"),
        (CPU, torch.float32, {"warmup_steps": 0}, "between 1 and 50"),
        (CPU, torch.float32, {"vae_upcast": "never"}, "'auto' or 'always'"),
        (CPU, torch.float32, {"fuse_qkv": True, "lora_adapters": True}, "silently ignored"),
    ],
)
def test_fast_path_combinations_that_cannot_work_are_one_clear_error(
    device: torch.device, dtype: torch.dtype, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(FastPathError, match=message) as info:
        FastPath.resolve(device, dtype, **options)
    assert "\n" not in str(info.value)


def test_fused_projections_are_refused_where_lora_styles_are_configured(
    tiny_extras_dir: Path,
) -> None:
    settings = Settings.load({}, config_file=tiny_extras_dir / "extras.toml", fuse_qkv=True)
    with pytest.raises(FastPathError, match="fuse_qkv cannot be combined with LoRA styles"):
        ModelRegistry(settings.engine()).get()


def test_worker_reports_a_fast_path_error_on_one_line(
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IMAGINE_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("IMAGINE_DEVICE", "cpu")
    monkeypatch.setenv("IMAGINE_SDPA_BACKEND", "flash")
    monkeypatch.delenv("IMAGINE_DATABASE_URL", raising=False)
    assert main(["worker", "--once"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (
        "imagine worker: sdpa_backend 'flash' needs a CUDA device but the worker runs on cpu; "
        "use 'auto' or 'math'"
    )


@pytest.mark.parametrize(
    ("dtype", "force_upcast", "policy", "expected"),
    [
        (torch.float16, True, "auto", torch.float32),  # SDXL's own VAE
        (torch.float16, False, "auto", torch.float16),  # an fp16-fixed VAE
        (torch.float16, False, "always", torch.float32),
        (torch.bfloat16, True, "auto", torch.bfloat16),  # bf16 does not overflow
        (torch.bfloat16, False, "always", torch.float32),
        (torch.float32, True, "auto", torch.float32),
        (torch.float32, False, "always", torch.float32),
    ],
)
def test_vae_precision_decision(
    dtype: torch.dtype, force_upcast: bool, policy: str, expected: torch.dtype
) -> None:
    chosen, reason = vae_precision(dtype, force_upcast, policy)
    assert chosen == expected and reason


def test_sizes_snap_to_the_nearest_bucket_by_aspect_ratio() -> None:
    buckets = [parse_size(size) for size in SDXL_SIZES]
    assert nearest_bucket(1600, 640, buckets) == (1536, 640)  # 5:2 -> 21:9
    assert nearest_bucket(640, 1600, buckets) == (640, 1536)
    assert nearest_bucket(1216, 832, buckets) == (1216, 832)
    assert nearest_bucket(1088, 896, buckets) == (1152, 896)
    compiled = FastPath.resolve(CPU, torch.float32, compile=True, size_buckets=["1024x1024"])
    assert compiled.render_size(1344, 768) == (1024, 1024)
    assert FastPath.resolve(CPU, torch.float32).render_size(1344, 768) == (1344, 768)


def test_fp16_keeps_the_sdxl_vae_in_fp32_and_renders_without_nan(
    engine: Engine, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gpu_worker.models")
    half = fast_engine(tiny_model_dir, dtype="float16")
    model = half.registry.get()
    assert model.txt2img.unet.dtype == torch.float16
    assert model.txt2img.vae.dtype == torch.float32
    assert "VAE runs in float32: its config sets force_upcast" in caplog.text
    ours, reference = grid(half), grid(engine)
    assert np.isfinite(ours).all() and ours.std() > 1.0
    # Measured: mean 0.11, max 1 grey level from the fp32 render.
    assert np.abs(ours - reference).mean() < 0.5 and np.abs(ours - reference).max() <= 4
    # img2img is built with from_pipe, which casts shared components; the VAE stays fp32.
    variation = half.render(
        RenderTask(
            request(),
            seed=3,
            kind=JobKind.VARIATION,
            init_images=(half.render(RenderTask(request(), seed=1)).images[0],),
            strength=0.5,
        )
    )
    assert model.txt2img.vae.dtype == torch.float32
    assert pixels(variation.images[0]).std() > 1.0


def test_fp16_vae_stays_fp32_through_pipelines_built_with_from_pipe(
    tiny_extras_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Profiles and ControlNet pipelines come from from_pipe, which casts the shared VAE to
    # the model dtype: in fp16 that would be SDXL's overflowing decode for every later job.
    settings = Settings.load({}, config_file=tiny_extras_dir / "extras.toml", dtype="float16")
    half = Engine(ModelRegistry(settings.engine()), cpu_threads=1)
    half.prepare()
    caplog.set_level(logging.INFO, logger="gpu_worker.fastpath")
    turbo = half.render(RenderTask(request(mode=SpeedMode.TURBO), seed=2))
    assert turbo.info == {"profile": "turbo"}
    assert "the VAE was cast to float16; back to float32" in caplog.text
    vae = half.registry.get().txt2img.vae
    assert vae.dtype == torch.float32
    default = half.render(RenderTask(request(), seed=2))
    for image in [*turbo.images, *default.images]:
        assert np.isfinite(pixels(image)).all() and pixels(image).std() > 1.0
    assert vae.dtype == torch.float32


def test_bf16_on_cpu_renders_close_to_fp32(
    engine: Engine, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gpu_worker.models")
    bf16 = fast_engine(tiny_model_dir, dtype="bfloat16")
    model = bf16.registry.get()
    assert model.txt2img.unet.dtype == model.txt2img.vae.dtype == torch.bfloat16
    assert "VAE runs in bfloat16" in caplog.text
    ours, reference = grid(bf16), grid(engine)
    assert np.isfinite(ours).all()
    # bf16 keeps 8 bits of mantissa; measured: mean 0.9, max 8 grey levels from fp32.
    assert np.abs(ours - reference).mean() < 2.0 and np.abs(ours - reference).max() <= 24


def test_channels_last_and_fused_projections_render_the_same_images_in_the_same_memory(
    engine: Engine, tiny_model_dir: Path
) -> None:
    fused = fast_engine(tiny_model_dir, channels_last=True, fuse_qkv=True)
    model = fused.registry.get()
    unet = model.txt2img.unet
    assert all(isinstance(p, FusedAttnProcessor2_0) for p in unet.attn_processors.values())
    conv = unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    # The unfused projections are views of the fused weights: no second copy.
    storages = {p.untyped_storage().data_ptr() for p in unet.parameters()}
    reference = engine.registry.get().txt2img.unet
    assert len(storages) < len(list(reference.parameters()))
    fused_bytes = sum(p.untyped_storage().nbytes() for p in _unique_storages(unet))
    plain_bytes = sum(p.untyped_storage().nbytes() for p in _unique_storages(reference))
    assert fused_bytes == plain_bytes
    ours, theirs = grid(fused), grid(engine)
    # Measured: one grey level at most, on a few pixels.
    assert np.abs(ours - theirs).max() <= 2 and np.abs(ours - theirs).mean() < 0.05


def _unique_storages(module: torch.nn.Module) -> list[torch.Tensor]:
    seen: dict[int, torch.Tensor] = {}
    for parameter in module.parameters():
        seen.setdefault(parameter.untyped_storage().data_ptr(), parameter)
    return list(seen.values())
