"""The fp16 VAE's self-heal: a decode that overflows is redone in float32, and stays so."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL as _AutoencoderKL

from gpu_worker.engine import Engine
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderTask
from gpu_worker.vae_guard import NonFiniteLatents, VaeGuard
from imagine.settings import Settings
from storage.contract import JobKind
from tests.worker.conftest import pixels, request

AutoencoderKL: Any = _AutoencoderKL  # diffusers' loaders are untyped
HEALED = "decoding again in float32, and in float32 from now on"


@pytest.fixture(scope="module")
def overflowing_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SDXL with a VAE that claims to be float16-safe (``force_upcast`` false) but is
    not: its first decoder convolution is scaled up 1e5, past float16's largest value (65504)
    on any real latents, while float32 and the group norm after it take that in stride."""
    target = tmp_path_factory.mktemp("overflowing") / "model"
    shutil.copytree(tiny_model_dir, target)
    vae = AutoencoderKL.from_pretrained(target / "vae")
    with torch.no_grad():
        vae.decoder.conv_in.weight.mul_(1e5)
        vae.decoder.conv_in.bias.mul_(1e5)
    vae.register_to_config(force_upcast=False)
    vae.save_pretrained(target / "vae")
    return target


def half_engine(model: Path, **settings: Any) -> Engine:
    engine = Engine(
        ModelRegistry(Settings.load({}, model=str(model), dtype="float16", **settings).engine()),
        cpu_threads=1,
    )
    engine.prepare()
    return engine


def grid(engine: Engine, seed: int, **task: Any) -> np.ndarray:
    result = engine.render(RenderTask(request(), seed=seed, **task))
    return np.stack([pixels(image) for image in result.images])


def test_the_test_vae_really_overflows_in_float16(overflowing_model: Path) -> None:
    vae = AutoencoderKL.from_pretrained(overflowing_model / "vae", torch_dtype=torch.float16)
    latents = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert not torch.isfinite(vae.decode(latents.half()).sample).all()
        assert torch.isfinite(vae.float().decode(latents).sample).all()


def test_an_overflowing_fp16_decode_is_redone_in_fp32_once_and_for_good(
    overflowing_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gpu_worker")
    half = half_engine(overflowing_model)
    model = half.registry.get()
    # The VAE says it is float16-safe, so it starts in float16, with its decodes checked.
    assert model.txt2img.vae.dtype == torch.float16
    assert "VAE decodes giving NaN or inf are redone in float32" in caplog.text

    first = grid(half, seed=5)
    assert np.isfinite(first).all() and first.std() > 1.0  # not black
    assert caplog.text.count(HEALED) == 1
    assert model.txt2img.vae.dtype == torch.float32
    # Remembered: later renders (img2img too, whose pipeline from_pipe casts the VAE to
    # float16 again) decode in float32 without overflowing first.
    again = grid(half, seed=6)
    source = half.render(RenderTask(request(), seed=1)).images[0]
    varied = grid(half, seed=3, kind=JobKind.VARIATION, init_images=(source,), strength=0.5)
    assert caplog.text.count(HEALED) == 1
    for images in (again, varied):
        assert np.isfinite(images).all() and images.std() > 1.0
    assert model.txt2img.vae.dtype == torch.float32

    # The healed decode is exactly that of the VAE kept in float32 from the start.
    always = half_engine(overflowing_model, vae_upcast="always")
    assert always.registry.get().txt2img.vae.dtype == torch.float32
    assert np.array_equal(grid(always, seed=5), first)


def test_latents_that_are_not_finite_fail_the_render_instead_of_painting_black(
    tiny_model_dir: Path,
) -> None:
    vae = AutoencoderKL.from_pretrained(tiny_model_dir / "vae", torch_dtype=torch.float16)
    guard = VaeGuard(vae)
    guard.install()
    latents = torch.full((1, 4, 8, 8), float("nan"), dtype=torch.float16)
    with torch.no_grad(), pytest.raises(NonFiniteLatents, match="UNet overflowed in float16"):
        vae.decode(latents)
    assert not guard.upcast and vae.dtype == torch.float16  # nothing to heal in the VAE
