"""Speed profiles on the tiny model: turbo (a distilled UNet) and draft (a LoRA, smaller size)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image

from gpu_worker.engine import Engine
from gpu_worker.errors import InvalidTask, ModelLoadError
from gpu_worker.extras import Extras
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderTask
from imagine.settings import Settings
from storage.contract import JobKind, SpeedMode
from storage.sampling import sampling_plan
from tests.worker.conftest import pixels, request

_diffusers: Any = diffusers


def extras(**values: Any) -> Extras:
    return Extras.from_settings(Settings.load({}, **values))


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        ({"trubo": {}}, "unknown profile 'trubo'; profiles are named after the speed mode"),
        ({"turbo": {"steps": 0}}, "profiles.turbo.steps must be a whole number 1..100, got 0"),
        ({"turbo": {"guidance": 30}}, "profiles.turbo.guidance must be a number 0..20, got 30"),
        ({"draft": {"size": 500}}, "profiles.draft.size must be a multiple of 8 (pixels), got 500"),
        ({"turbo": {"scheduler": "ddim"}}, "unknown 'ddim'; choose one of euler_trailing, lcm"),
        ({"turbo": {"unet": "/a", "lora": "/b"}}, "give unet (a distilled UNet) or lora, not both"),
        ({"turbo": {"stpes": 4}}, "profiles.turbo: unknown key 'stpes'; allowed: model, unet"),
    ],
)
def test_bad_profile_configuration_is_refused_with_the_entry(
    profiles: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        extras(profiles=profiles)


def test_profiles_load_from_toml_with_their_defaults(tiny_extras_dir: Path) -> None:
    settings = Settings.load({}, config_file=tiny_extras_dir / "extras.toml")
    configured = Extras.from_settings(settings)
    turbo, draft = configured.profiles["turbo"], configured.profiles["draft"]
    assert (turbo.scheduler, turbo.steps, turbo.guidance, turbo.size) == (
        "euler_trailing",
        2,
        0.0,
        None,
    )
    assert turbo.unet == tiny_extras_dir / "extras" / "turbo-unet"
    assert (draft.scheduler, draft.steps, draft.guidance, draft.size) == ("lcm", 2, 1.0, 32)
    assert configured.problems() == []


def test_missing_weights_are_reported_once_and_not_advertised(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.load(
        {},
        model=str(tiny_model_dir),
        profiles={"turbo": {"unet": str(tmp_path / "nowhere")}, "draft": {"steps": 3}},
    )
    engine = Engine(ModelRegistry(settings.engine()), cpu_threads=1)
    with caplog.at_level(logging.WARNING, logger="gpu_worker.engine"):
        engine.prepare()
    lines = [r.getMessage() for r in caplog.records if "not offered" in r.getMessage()]
    assert lines == [
        f"not offered on this worker: profile turbo: no UNet at {tmp_path / 'nowhere'} "
        "(expected a config.json there)"
    ]
    assert engine.capabilities()["profiles"] == {
        "draft": {"steps": 3, "guidance": 0.0, "size": None}
    }
    with pytest.raises(ModelLoadError, match="--turbo paints with the turbo profile, which this"):
        engine.render(RenderTask(request(mode=SpeedMode.TURBO), seed=1))


def test_turbo_grid_paints_with_the_distilled_unet_in_its_steps(
    extras_engine: Engine, tiny_extras_dir: Path
) -> None:
    req = request("a lighthouse", steps=30, mode=SpeedMode.TURBO)
    ours = extras_engine.render(RenderTask(req, seed=5))
    assert ours.info == {"profile": "turbo"}
    assert ours.steps_run == 2
    # Exactly a plain diffusers call with that UNet, Euler "trailing" and guidance 0.
    plain = _diffusers.StableDiffusionXLPipeline.from_pretrained(
        tiny_extras_dir,
        unet=_diffusers.UNet2DConditionModel.from_pretrained(
            tiny_extras_dir / "extras" / "turbo-unet"
        ),
    )
    plain.scheduler = _diffusers.EulerDiscreteScheduler.from_config(
        plain.scheduler.config, timestep_spacing="trailing"
    )
    plain.set_progress_bar_config(disable=True)
    theirs = plain(
        prompt="a lighthouse" + sampling_plan(req).style_suffix,
        num_images_per_prompt=4,
        generator=[torch.Generator().manual_seed(5 + i) for i in range(4)],
        guidance_scale=0.0,
        num_inference_steps=2,
        width=ours.width,
        height=ours.height,
    ).images
    for a, b in zip(ours.images, theirs, strict=True):
        assert np.array_equal(pixels(a), pixels(b))


def test_turbo_differs_from_the_default_profile(extras_engine: Engine) -> None:
    default = extras_engine.render(RenderTask(request(steps=2), seed=3))
    turbo = extras_engine.render(RenderTask(request(steps=2, mode=SpeedMode.TURBO), seed=3))
    assert default.info == {"profile": "default"}
    for a, b in zip(default.images, turbo.images, strict=True):
        assert np.abs(pixels(a) - pixels(b)).mean() > 1.0


def test_draft_grid_renders_smaller_with_its_lora_and_lcm(extras_engine: Engine) -> None:
    draft = extras_engine.render(RenderTask(request(mode=SpeedMode.DRAFT, steps=30), seed=9))
    assert draft.info == {"profile": "draft"}
    assert (draft.width, draft.height) == (32, 32)
    assert [image.size for image in draft.images] == [(32, 32)] * 4
    assert draft.steps_run == 2
    again = extras_engine.render(RenderTask(request(mode=SpeedMode.DRAFT, steps=30), seed=9))
    for a, b in zip(draft.images, again.images, strict=True):
        assert np.array_equal(pixels(a), pixels(b))
    # The draft size keeps the aspect: 16:9 at a 32 px side.
    wide = extras_engine.render(
        RenderTask(request(mode=SpeedMode.DRAFT, width=1344, height=768), seed=9, indices=(0,))
    )
    assert (wide.width, wide.height) == (40, 24)


def test_a_distilled_unet_profile_refuses_another_model(
    tiny_extras_dir: Path, tiny_model_dir: Path
) -> None:
    settings = Settings.load(
        {},
        config_file=tiny_extras_dir / "extras.toml",
        model_aliases={"other": str(tiny_model_dir)},
    )
    engine = Engine(ModelRegistry(settings.engine()), cpu_threads=1)
    with pytest.raises(InvalidTask, match="cannot be combined with --model other"):
        engine.render(RenderTask(request(mode=SpeedMode.TURBO, model="other"), seed=1))


def test_upscale_of_a_turbo_job_refines_with_the_default_profile(extras_engine: Engine) -> None:
    source = Image.new("RGB", (32, 32), (120, 80, 40))
    result = extras_engine.render(
        RenderTask(
            request(mode=SpeedMode.TURBO, steps=4),
            seed=1,
            kind=JobKind.UPSCALE,
            init_images=(source,),
            strength=0.5,
            indices=(0,),
        )
    )
    # The default profile's schedule (4 steps at strength 0.5): 2 steps on the one tile.
    assert result.steps_run == 2
    assert result.images[0].size == (64, 64)


def test_a_distilled_unet_gets_the_base_models_fast_path(
    extras_engine: Engine, tiny_extras_dir: Path, tmp_path: Path
) -> None:
    settings = Settings.load(
        {}, config_file=tiny_extras_dir / "extras.toml", data_dir=tmp_path, channels_last=True
    )
    engine = Engine(ModelRegistry(settings.engine()), cpu_threads=1)
    engine.prepare()
    req = request("a lighthouse", mode=SpeedMode.TURBO)
    ours = engine.render(RenderTask(req, seed=5))
    unet = engine.features.prepare(engine.registry, req).model.txt2img.unet
    conv = unet.conv_in.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    theirs = extras_engine.render(RenderTask(req, seed=5))
    assert ours.info == theirs.info == {"profile": "turbo"}
    for a, b in zip(ours.images, theirs.images, strict=True):
        assert np.abs(pixels(a).astype(int) - pixels(b).astype(int)).max() <= 2


def test_warm_up_builds_and_renders_every_profile_before_the_first_job(
    tiny_extras_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gpu_worker")
    settings = Settings.load(
        {},
        config_file=tiny_extras_dir / "extras.toml",
        data_dir=tmp_path,
        warmup=True,
        warmup_steps=1,
        size_buckets=["1024x1024"],
    )
    engine = Engine(ModelRegistry(settings.engine()), cpu_threads=1)
    engine.prepare()
    done = [r.getMessage() for r in caplog.records if " done in " in r.getMessage()]
    assert [line.split(" done in ")[0] for line in done] == [
        "warm-up",
        "warm-up (draft profile)",
        "warm-up (turbo profile)",
    ]
    assert "building the turbo profile over model" in caplog.text
    caplog.clear()
    engine.render(RenderTask(request(mode=SpeedMode.TURBO), seed=1))
    assert "building the" not in caplog.text
