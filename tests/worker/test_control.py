"""ControlNet on the tiny model: canny edges and depth maps from the image prompt steer a grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from gpu_worker.control import CANNY_HIGH, CANNY_LOW, canny_map
from gpu_worker.engine import Engine
from gpu_worker.errors import InvalidTask, ModelLoadError
from gpu_worker.task import RenderTask
from storage.contract import Control, ControlKind, JobKind, SpeedMode
from tests.worker.conftest import diffusers_grid, pixels, request

_diffusers: Any = diffusers


def shapes(offset: int = 0) -> Image.Image:
    """A photo stand-in with hard edges: a white box and an orange disc on black."""
    image = Image.new("RGB", (96, 96), "black")
    draw = ImageDraw.Draw(image)
    draw.rectangle((20 + offset, 20, 70 + offset, 60), fill="white")
    draw.ellipse((50 - offset, 50, 90 - offset, 90), fill=(220, 120, 40))
    return image


def grid(engine: Engine, **task: Any) -> list[np.ndarray]:
    changes = task.pop("changes", {})
    result = engine.render(RenderTask(request(**changes), seed=task.pop("seed", 3), **task))
    return [pixels(image) for image in result.images]


def apart(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return min(float(np.abs(x - y).mean()) for x, y in zip(a, b, strict=True))


CANNY = Control(ControlKind.CANNY, 0.5)
CANNY_INFO = {"kind": "canny", "scale": 0.5}


def test_canny_map_is_white_edges_on_black_at_the_render_size() -> None:
    hint = np.asarray(canny_map(shapes(), (64, 64)))
    assert hint.shape == (64, 64, 3)
    assert set(np.unique(hint)) == {0, 255}
    # Edges trace the box's outline (cover-scaled 96 -> 64: x 13..47); inside it is flat.
    assert hint[14:40, 12:16].max() == 255
    assert hint[20:35, 20:40].max() == 0
    assert (CANNY_LOW, CANNY_HIGH) == (100, 200)


def test_control_grid_matches_a_plain_diffusers_controlnet_call(
    extras_engine: Engine, tiny_extras_dir: Path
) -> None:
    req = request("a house", steps=3, control=CANNY)
    ours = extras_engine.render(RenderTask(req, seed=8, init_images=(shapes(),)))
    assert ours.info == {"profile": "default", "control": CANNY_INFO}
    controlnet = _diffusers.ControlNetModel.from_pretrained(
        tiny_extras_dir / "extras" / "controlnet-canny"
    )
    plain = _diffusers.StableDiffusionXLControlNetPipeline.from_pretrained(
        tiny_extras_dir, controlnet=controlnet
    )
    theirs = diffusers_grid(
        plain, req, 8, image=canny_map(shapes(), (64, 64)), controlnet_conditioning_scale=0.5
    )
    for a, b in zip(ours.images, theirs, strict=True):
        assert np.array_equal(pixels(a), pixels(b))


def test_the_control_image_steers_the_grid_and_scale_zero_is_plain_txt2img(
    extras_engine: Engine,
) -> None:
    plain = grid(extras_engine)
    boxed = grid(extras_engine, init_images=(shapes(),), changes={"control": CANNY})
    moved = grid(extras_engine, init_images=(shapes(25),), changes={"control": CANNY})
    assert apart(plain, boxed) > 1.0
    assert apart(boxed, moved) > 1.0
    # The image prompt is the control source, not an img2img canvas: at scale 0 it is ignored.
    off = grid(
        extras_engine,
        init_images=(shapes(),),
        changes={"control": Control(ControlKind.CANNY, 0.0)},
    )
    assert apart(off, plain) == 0.0


def test_depth_control_uses_the_configured_depth_estimator(extras_engine: Engine) -> None:
    depth = Control(ControlKind.DEPTH, 1.0)
    result = extras_engine.render(
        RenderTask(request(control=depth), seed=3, init_images=(shapes(),))
    )
    assert result.info["control"] == {"kind": "depth", "scale": 1.0}
    hint = extras_engine.features.controlnets.control_map(
        "depth", shapes(), (64, 48), torch.device("cpu")
    )
    values = np.asarray(hint)
    assert hint.size == (64, 48) and values.min() == 0 and values.max() == 255
    assert apart([pixels(i) for i in result.images], grid(extras_engine)) > 1.0


def test_control_works_with_the_turbo_profile_and_in_variations(extras_engine: Engine) -> None:
    turbo = grid(
        extras_engine, init_images=(shapes(),), changes={"control": CANNY, "mode": SpeedMode.TURBO}
    )
    assert apart(turbo, grid(extras_engine, changes={"mode": SpeedMode.TURBO})) > 1.0
    source = Image.fromarray(turbo[0].astype(np.uint8))
    varied = {"kind": JobKind.VARIATION, "init_images": (source,), "strength": 0.85}
    followed = grid(extras_engine, prompt_images=(shapes(),), changes={"control": CANNY}, **varied)
    free = grid(extras_engine, **varied)
    assert apart(followed, free) > 1.0


def test_control_without_an_image_or_a_controlnet_is_refused(
    extras_engine: Engine, engine: Engine
) -> None:
    with pytest.raises(InvalidTask, match="--control needs an image to follow: give an image"):
        extras_engine.render(RenderTask(request(control=CANNY), seed=1))
    with pytest.raises(InvalidTask, match="--control scale must be between 0 and 2, got 3"):
        extras_engine.render(
            RenderTask(
                request(control=Control(ControlKind.CANNY, 3)), seed=1, init_images=(shapes(),)
            )
        )
    with pytest.raises(ModelLoadError, match=r"does not have \(ControlNets here: none\)"):
        engine.render(RenderTask(request(control=CANNY), seed=1, init_images=(shapes(),)))
