"""IP-Adapter references on the tiny model: image prompts, style and character references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import pytest
from PIL import Image, ImageDraw

from gpu_worker.engine import Engine
from gpu_worker.errors import InvalidTask
from gpu_worker.models import ModelRegistry
from gpu_worker.references import STYLE_LAYERS
from gpu_worker.task import RenderTask
from imagine.settings import Settings
from storage.contract import Control, ControlKind, JobKind
from tests.worker.conftest import diffusers_grid, pixels, request

_diffusers: Any = diffusers


def picture(colour: tuple[int, int, int] = (230, 60, 40)) -> Image.Image:
    image = Image.new("RGB", (80, 80), (20, 20, 60))
    ImageDraw.Draw(image).ellipse((10, 15, 70, 65), fill=colour)
    return image


def grid(engine: Engine, **task: Any) -> list[np.ndarray]:
    changes = task.pop("changes", {})
    result = engine.render(RenderTask(request(**changes), seed=task.pop("seed", 6), **task))
    return [pixels(image) for image in result.images]


def apart(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return min(float(np.abs(x - y).mean()) for x, y in zip(a, b, strict=True))


def test_image_prompt_grid_matches_diffusers_with_the_same_ip_adapter(
    extras_engine: Engine, tiny_extras_dir: Path
) -> None:
    req = request("a cat", steps=3)
    ours = extras_engine.render(RenderTask(req, seed=12, init_images=(picture(),)))
    assert ours.info == {"profile": "default", "reference": {"role": "image", "scale": 0.5}}
    plain = _diffusers.StableDiffusionXLPipeline.from_pretrained(tiny_extras_dir)
    adapter = tiny_extras_dir / "extras" / "ip-adapter"
    plain.load_ip_adapter(
        str(adapter),
        subfolder="",
        weight_name="ip-adapter_tiny.safetensors",
        image_encoder_folder="image_encoder",
    )
    plain.set_ip_adapter_scale(0.5)
    theirs = diffusers_grid(plain, req, 12, ip_adapter_image=picture())
    for a, b in zip(ours.images, theirs, strict=True):
        assert np.abs(pixels(a) - pixels(b)).max() <= 1.0


def test_image_prompts_condition_instead_of_being_a_canvas(extras_engine: Engine) -> None:
    plain = grid(extras_engine)
    red = grid(extras_engine, init_images=(picture(),))
    green = grid(extras_engine, init_images=(picture((40, 220, 60)),))
    assert apart(plain, red) > 1.0
    assert apart(red, green) > 0.5
    # --iw 0 puts no weight on the image: exactly the text-only grid, so no img2img canvas.
    assert (
        apart(grid(extras_engine, init_images=(picture(),), changes={"image_weight": 0}), plain)
        == 0
    )


def test_jobs_without_references_paint_as_if_no_adapter_was_loaded(
    extras_settings: Settings,
) -> None:
    engine = Engine(ModelRegistry(extras_settings.engine()), cpu_threads=1)
    before = grid(engine)
    grid(engine, init_images=(picture(),))
    grid(engine, style_images=(picture(),))
    assert apart(grid(engine), before) == 0


def test_style_and_character_together_match_diffusers_with_the_adapter_loaded_twice(
    extras_engine: Engine, tiny_extras_dir: Path
) -> None:
    style, character = picture((240, 200, 30)), picture((40, 220, 60))
    req = request("a cat", steps=3)
    ours = extras_engine.render(
        RenderTask(
            req,
            seed=12,
            style_images=(style,),
            style_weight=250,
            character_images=(character,),
            character_weight=50,
        )
    )
    plain = _diffusers.StableDiffusionXLPipeline.from_pretrained(tiny_extras_dir)
    adapter = str(tiny_extras_dir / "extras" / "ip-adapter")
    plain.load_ip_adapter(
        [adapter, adapter],
        subfolder=["", ""],
        weight_name=["ip-adapter_tiny.safetensors"] * 2,
        image_encoder_folder="image_encoder",
    )
    # Two copies of the same weights; the style copy only in the style layers.
    for name, processor in plain.unet.attn_processors.items():
        if hasattr(processor, "to_k_ip"):
            in_style = any(layer in name for layer in STYLE_LAYERS)
            processor.scale = [1.5 if in_style else 0.0, 0.4]
    theirs = diffusers_grid(plain, req, 12, ip_adapter_image=[style, character])
    for a, b in zip(ours.images, theirs, strict=True):
        assert np.abs(pixels(a) - pixels(b)).max() <= 1.0


def test_style_reference_reaches_only_the_style_layers(extras_engine: Engine) -> None:
    plain = grid(extras_engine)
    styled = extras_engine.render(
        RenderTask(request(), seed=6, style_images=(picture(),), style_weight=250)
    )
    assert styled.info["reference"] == {"role": "style", "scale": 1.5}
    assert apart([pixels(i) for i in styled.images], plain) > 0.1
    unet = extras_engine.registry.get(None).txt2img.unet
    scales = {
        name: processor.scale[0]
        for name, processor in unet.attn_processors.items()
        if hasattr(processor, "to_k_ip")
    }
    assert {n: s for n, s in scales.items() if any(layer in n for layer in STYLE_LAYERS)}
    assert all(
        s == (1.5 if any(layer in n for layer in STYLE_LAYERS) else 0.0) for n, s in scales.items()
    )


def test_style_and_character_references_paint_together_in_their_own_slots(
    extras_engine: Engine,
) -> None:
    style, character = picture((240, 200, 30)), picture((40, 220, 60))
    both = extras_engine.render(
        RenderTask(
            request(),
            seed=6,
            style_images=(style,),
            style_weight=250,
            character_images=(character,),
            character_weight=50,
        )
    )
    assert both.info["references"] == [
        {"role": "style", "scale": 1.5},
        {"role": "character", "scale": 0.4},
    ]
    # Each slot at its scale: the style one only in the style layers, the character one in all.
    unet = extras_engine.registry.get(None).txt2img.unet
    adapters = {
        name: processor
        for name, processor in unet.attn_processors.items()
        if hasattr(processor, "to_k_ip")
    }
    assert adapters and all(
        processor.scale == [1.5 if any(layer in n for layer in STYLE_LAYERS) else 0.0, 0.4]
        for n, processor in adapters.items()
    )
    # The second slot shares the adapter's weights instead of holding a copy.
    assert all(p.to_k_ip[0] is p.to_k_ip[1] for p in adapters.values())
    painted = [pixels(i) for i in both.images]
    alone = grid(extras_engine, character_images=(character,), character_weight=50)
    styled = grid(extras_engine, style_images=(style,), style_weight=250)
    assert apart(painted, alone) > 0 and apart(painted, styled) > 0
    # Deterministic, and a later job with one reference is painted as before the pair.
    again = grid(
        extras_engine,
        style_images=(style,),
        style_weight=250,
        character_images=(character,),
        character_weight=50,
    )
    assert apart(again, painted) == 0
    assert (
        apart(grid(extras_engine, character_images=(character,), character_weight=50), alone) == 0
    )


def test_character_reference_and_control_together(extras_engine: Engine) -> None:
    canny = Control(ControlKind.CANNY, 0.5)
    both = extras_engine.render(
        RenderTask(
            request(control=canny),
            seed=6,
            init_images=(picture(),),
            character_images=(picture((40, 220, 60)),),
            character_weight=50,
        )
    )
    assert both.info["control"] == {"kind": "canny", "scale": 0.5}
    assert both.info["reference"] == {"role": "character", "scale": 0.4}
    control_only = grid(extras_engine, init_images=(picture(),), changes={"control": canny})
    # The ControlNet pipeline takes the reference's embeddings too.
    assert apart([pixels(i) for i in both.images], control_only) > 0


def test_without_an_adapter_references_are_left_out_and_weights_checked(
    engine: Engine, extras_engine: Engine
) -> None:
    assert apart(grid(engine, style_images=(picture(),)), grid(engine)) == 0
    with pytest.raises(InvalidTask, match="--sw must be between 0 and 1000, got 1001"):
        extras_engine.render(
            RenderTask(request(), seed=1, style_images=(picture(),), style_weight=1001)
        )
    with pytest.raises(InvalidTask, match="--cw must be between 0 and 100, got -1"):
        extras_engine.render(
            RenderTask(request(), seed=1, character_images=(picture(),), character_weight=-1)
        )


def test_a_variation_with_a_style_reference_still_starts_from_its_source(
    extras_engine: Engine,
) -> None:
    def variation(source: Image.Image, **task: Any) -> list[np.ndarray]:
        return grid(extras_engine, kind=JobKind.VARIATION, init_images=(source,), **task)

    green, blue = picture((40, 220, 60)), picture((40, 60, 220))
    styled = variation(green, strength=0.5, style_images=(picture(),))
    # The reference changes the variation...
    assert apart(styled, variation(green, strength=0.5)) > 0.5
    # ...which still starts from its source: another source gives another grid.
    assert apart(styled, variation(blue, strength=0.5, style_images=(picture(),))) > 0.5
