"""The SDXL engine on the tiny model: reproducibility, fidelity to diffusers, and every knob."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image

from gpu_worker.engine import Engine
from gpu_worker.errors import InvalidTask, JobCancelled, ModelLoadError, UnknownModel
from gpu_worker.imaging import make_grid
from gpu_worker.models import ModelRegistry
from gpu_worker.task import RenderTask, StepEvent
from imagine.settings import Settings
from storage.contract import JobKind
from storage.sampling import sampling_plan
from tests.worker.conftest import pixels, request

_diffusers: Any = diffusers


def render(engine: Engine, seed: int = 7, **changes: Any) -> list[np.ndarray]:
    result = engine.render(RenderTask(request(**changes), seed=seed))
    return [pixels(image) for image in result.images]


def spread(images: list[np.ndarray]) -> float:
    """Mean absolute difference over all pairs of images."""
    return float(np.mean([np.abs(a - b).mean() for a, b in itertools.combinations(images, 2)]))


def test_same_seed_and_request_give_identical_pixels(engine: Engine) -> None:
    first = render(engine, seed=11)
    second = render(engine, seed=11)
    assert len(first) == 4
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)


def test_different_seeds_differ(engine: Engine) -> None:
    a, b = render(engine, seed=1), render(engine, seed=2)
    assert all(np.abs(x - y).mean() > 1.0 for x, y in zip(a, b, strict=True))
    assert spread(a) > 1.0  # the four images of one grid differ too


@pytest.fixture(scope="module")
def plain_diffusers(tiny_model_dir: Path) -> Any:
    pipe = _diffusers.StableDiffusionXLPipeline.from_pretrained(tiny_model_dir)
    pipe.scheduler = _diffusers.DPMSolverMultistepScheduler.from_config(
        pipe.scheduler.config, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_txt2img_matches_a_plain_diffusers_call(engine: Engine, plain_diffusers: Any) -> None:
    # Default settings (chaos 0, weird 0): exactly diffusers with one generator per image.
    req = request("a lighthouse at dusk", steps=3)
    plan = sampling_plan(req)
    ours = engine.render(RenderTask(req, seed=42))
    theirs = plain_diffusers(
        prompt="a lighthouse at dusk" + plan.style_suffix,
        num_images_per_prompt=4,
        generator=[torch.Generator().manual_seed(42 + i) for i in range(4)],
        guidance_scale=plan.guidance_scale,
        num_inference_steps=3,
        width=ours.width,
        height=ours.height,
    ).images
    for a, b in zip(ours.images, theirs, strict=True):
        assert np.array_equal(pixels(a), pixels(b))


def test_negative_prompt_matches_diffusers_negative_prompt(
    engine: Engine, plain_diffusers: Any
) -> None:
    req = request("a castle", negative_prompt="fog", raw=True)
    plan = sampling_plan(req)
    ours = engine.render(RenderTask(req, seed=3))
    theirs = plain_diffusers(
        prompt="a castle",
        negative_prompt="fog",
        num_images_per_prompt=4,
        generator=[torch.Generator().manual_seed(3 + i) for i in range(4)],
        guidance_scale=plan.guidance_scale,
        num_inference_steps=2,
        width=ours.width,
        height=ours.height,
    ).images
    assert np.array_equal(pixels(ours.images[2]), pixels(theirs[2]))
    assert not np.array_equal(pixels(ours.images[2]), render(engine, 3, raw=True)[2])


@pytest.mark.parametrize(("chaos", "weird"), [(0, 0), (60, 0), (100, 1500)])
def test_grid_image_equals_that_image_alone_at_its_seed(
    engine: Engine, chaos: int, weird: int
) -> None:
    req = request(chaos=chaos, weird=weird)
    grid = engine.render(RenderTask(req, seed=9))
    for i in range(4):
        # A one-image render of the same request at seed + i, and image i of the grid alone.
        single = engine.render(RenderTask(req, seed=9 + i, indices=(0,)))
        alone = engine.render(RenderTask(req, seed=9, indices=(i,)))
        assert single.seeds == alone.seeds == [9 + i]
        assert np.array_equal(pixels(single.images[0]), pixels(alone.images[0]))
        diff = np.abs(pixels(grid.images[i]) - pixels(single.images[0]))
        # Same noise, same conditioning; a batch of 4 and a batch of 1 may round a float
        # differently inside the convolutions, which can move a pixel by one level.
        assert diff.max() <= 2, f"image {i}"
        assert diff.mean() < 0.05, f"image {i}"


def test_aspect_ratio_scales_to_the_model_and_keeps_proportion(engine: Engine) -> None:
    result = engine.render(RenderTask(request(width=1344, height=768, aspect="16:9"), seed=1))
    # The tiny model is 64 px native: 1344x768 * 64/1024 = 84x48, sides rounded to 8 px.
    assert (result.width, result.height) == (88, 48)
    assert all(image.size == (88, 48) for image in result.images)
    assert abs(result.width / result.height - 1344 / 768) <= 8 / result.height
    portrait = engine.render(RenderTask(request(width=768, height=1344), seed=1))
    assert (portrait.width, portrait.height) == (48, 88)


def test_grid_is_two_by_two_of_the_four_images(engine: Engine) -> None:
    result = engine.render(RenderTask(request(width=1216, height=832), seed=5))
    grid = make_grid(result.images)
    w, h = result.width, result.height
    assert grid.size == (2 * w, 2 * h)
    for i, image in enumerate(result.images):
        box = ((i % 2) * w, (i // 2) * h, (i % 2 + 1) * w, (i // 2 + 1) * h)
        assert np.array_equal(pixels(grid.crop(box)), pixels(image))


def seam(image: np.ndarray) -> float:
    """How much the right edge differs from the left edge, relative to neighbouring columns."""
    across = np.abs(image[:, 0] - image[:, -1]).mean()
    inside = np.mean(
        [np.abs(image[:, x] - image[:, x + 1]).mean() for x in range(image.shape[1] - 1)]
    )
    return float(across / inside)


def test_tile_output_wraps_left_to_right(engine: Engine) -> None:
    plain = [seam(image) for seed in range(3) for image in render(engine, seed)]
    tiled = [seam(image) for seed in range(3) for image in render(engine, seed, tile=True)]
    # Wrapping edges differ about as much as any two neighbouring columns (ratio near 1);
    # unrelated edges differ far more.
    assert np.mean(tiled) < 0.75 * np.mean(plain), (np.mean(tiled), np.mean(plain))
    unet = engine.registry.get().txt2img.unet
    assert all(
        layer.padding_mode == "zeros"
        for layer in unet.modules()
        if isinstance(layer, torch.nn.Conv2d)
    ), "circular padding must be restored after a tiled render"


def test_stop_runs_that_share_of_the_steps(engine: Engine) -> None:
    events: list[StepEvent] = []
    result = engine.render(RenderTask(request(steps=8, stop=50), seed=4), on_step=events.append)
    assert result.steps_run == 4
    assert [e.step for e in events] == [1, 2, 3, 4]
    assert events[-1].percent == 100
    full = engine.render(RenderTask(request(steps=8), seed=4))
    assert full.steps_run == 8
    # Stopped early, the images are still decoded, and they differ from the finished ones.
    assert np.abs(pixels(result.images[0]) - pixels(full.images[0])).mean() > 1.0


def test_cancel_stops_within_one_step(engine: Engine) -> None:
    events: list[StepEvent] = []
    with pytest.raises(JobCancelled):
        engine.render(
            RenderTask(request(steps=10), seed=1),
            on_step=events.append,
            cancelled=lambda: len(events) >= 1,
        )
    assert len(events) == 1


def layout_spread(images: list[np.ndarray], block: int = 16) -> float:
    """Mean difference between the images' block averages: layout, light and colour, not texture."""
    blocks = [
        image.reshape(image.shape[0] // block, block, image.shape[1] // block, block, 3).mean(
            axis=(1, 3)
        )
        for image in images
    ]
    return spread(blocks)


def test_more_chaos_spreads_the_grid_further(engine: Engine) -> None:
    # Four independent images differ in every pixel at any chaos; what chaos widens is how far
    # their layouts are apart, seen in 16 px block averages (4x4 of a 64 px image).
    spreads = [
        np.mean([layout_spread(render(engine, seed, chaos=chaos)) for seed in range(4)])
        for chaos in (0, 50, 100)
    ]
    assert spreads == sorted(spreads), spreads
    assert spreads[2] > 1.2 * spreads[0], spreads
    # Chaos perturbs every image, image 0 included, from its own seed's noise.
    plain, chaotic = render(engine, 3), render(engine, 3, chaos=100)
    assert all(np.abs(a - b).mean() > 1.0 for a, b in zip(plain, chaotic, strict=True))


def test_weird_moves_each_image_off_the_literal_prompt(engine: Engine) -> None:
    plain = render(engine, 6)
    weird = render(engine, 6, weird=3000)
    assert all(np.abs(a - b).mean() > 0.5 for a, b in zip(plain, weird, strict=True))
    assert render(engine, 6, weird=0)[1].tolist() == plain[1].tolist()


def test_multi_prompt_weights_and_stylize_change_the_image(engine: Engine) -> None:
    base = render(engine, 8, raw=True)[0]
    blended = render(engine, 8, raw=True, segments=(("a red fox", 1.0), ("snow", 1.0)))[0]
    heavier = render(engine, 8, raw=True, segments=(("a red fox", 1.0), ("snow", 3.0)))[0]
    negative = render(engine, 8, raw=True, segments=(("a red fox", 1.0), ("snow", -0.5)))[0]
    for other in (blended, heavier, negative):
        assert np.abs(base - other).mean() > 0.5
    assert np.abs(blended - heavier).mean() > 0.5
    styled = render(engine, 8, stylize=1000)[0]
    assert np.abs(base - styled).mean() > 0.5


def latent_spread(latents: torch.Tensor) -> float:
    """Mean distance between the batch's latents."""
    items = [latents[i].float() for i in range(latents.shape[0])]
    return float(
        np.mean([(a - b).abs().mean().item() for a, b in itertools.combinations(items, 2)])
    )


def img2img(engine: Engine, task: RenderTask) -> tuple[list[StepEvent], list[np.ndarray]]:
    events: list[StepEvent] = []
    result = engine.render(task, on_step=events.append)
    return events, [pixels(image) for image in result.images]


def test_variation_strength_sets_how_much_is_redrawn(engine: Engine) -> None:
    # The tiny model's weights are random, so its VAE does not give back its input and pixel
    # closeness to the source means nothing; what strength controls is observable in the
    # schedule: how many steps are redrawn and how alike the four starting points are.
    source = engine.render(RenderTask(request(), seed=2)).images[0]

    def variation(strength: float) -> tuple[list[StepEvent], list[np.ndarray]]:
        return img2img(
            engine,
            RenderTask(
                request(steps=10),
                seed=5,
                kind=JobKind.VARIATION,
                init_images=(source,),
                strength=strength,
            ),
        )

    (subtle_steps, subtle), (strong_steps, strong) = variation(0.5), variation(0.85)
    assert [len(subtle_steps), len(strong_steps)] == [5, 8]
    assert all(image.shape[:2] == (source.height, source.width) for image in subtle + strong)
    assert latent_spread(subtle_steps[0].latents) < latent_spread(strong_steps[0].latents)
    assert np.abs(subtle[0] - strong[0]).mean() > 0.5
    assert np.array_equal(variation(0.5)[1][3], subtle[3])


def test_image_prompts_run_img2img_weighted_by_iw(engine: Engine) -> None:
    first = engine.render(RenderTask(request(), seed=2)).images[0]
    second = engine.render(RenderTask(request(), seed=3)).images[0]

    def with_image(image: Image.Image, weight: float) -> tuple[list[StepEvent], list[np.ndarray]]:
        task = RenderTask(request(image_weight=weight, steps=8), seed=1, init_images=(image,))
        return img2img(engine, task)

    (heavy_steps, heavy), (light_steps, _) = with_image(first, 3.0), with_image(first, 0.5)
    # --iw 3: strength 0.25, 2 of 8 steps redrawn; --iw 0.5: strength 0.875, 7 of 8.
    assert [len(heavy_steps), len(light_steps)] == [2, 7]
    assert latent_spread(heavy_steps[0].latents) < latent_spread(light_steps[0].latents)
    # The image itself matters: another image prompt gives other pictures.
    assert np.abs(heavy[0] - with_image(second, 3.0)[1][0]).mean() > 1.0


def test_variation_without_source_is_a_clear_error(engine: Engine) -> None:
    with pytest.raises(InvalidTask, match="source image"):
        engine.render(RenderTask(request(), seed=1, kind=JobKind.VARIATION, strength=0.5))


def test_upscale_doubles_the_size(engine: Engine) -> None:
    source = engine.render(RenderTask(request(width=1216, height=832), seed=2)).images[0]
    events: list[StepEvent] = []
    task = RenderTask(
        request(steps=10),
        seed=3,
        kind=JobKind.UPSCALE,
        init_images=(source,),
        strength=0.2,
        indices=(0,),
    )
    result = engine.render(task, on_step=events.append)
    assert (result.width, result.height) == (2 * source.width, 2 * source.height)
    assert result.images[0].size == (160, 112)
    # 160x112 in 64 px tiles overlapping by 16: 3 columns x 2 rows, 2 steps each at 0.2 of 10.
    assert events[-1].step == events[-1].total == 12
    # A subtle upscale keeps the picture: compared at the source size it is close to it.
    small = result.images[0].resize(source.size)
    assert np.abs(pixels(small) - pixels(source)).mean() < 40


@pytest.mark.parametrize("size", [(2049, 2048), (4096, 1025)])
def test_upscale_of_an_image_over_the_pixel_cap_is_refused_before_any_step(
    engine: Engine, size: tuple[int, int]
) -> None:
    events: list[StepEvent] = []
    task = RenderTask(
        request(steps=10),
        seed=3,
        kind=JobKind.UPSCALE,
        init_images=(Image.new("RGB", size),),
        strength=0.2,
        indices=(0,),
    )
    with pytest.raises(InvalidTask) as refused:
        engine.render(task, on_step=events.append)
    assert str(refused.value) == (
        f"the image is {size[0]}x{size[1]}; upscaling takes images of at most "
        "4,194,304 pixels (2048x2048)"
    )
    assert events == []


def test_img2img_and_inpaint_share_the_txt2img_components(engine: Engine) -> None:
    model = engine.registry.get()
    for pipe in (model.img2img, model.inpaint):
        for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
            assert getattr(pipe, name) is getattr(model.txt2img, name)


def test_aliases_resolve_and_unknown_ones_list_what_exists(engine: Engine) -> None:
    result = engine.render(RenderTask(request(model="second"), seed=1))
    assert result.model == "second"
    with pytest.raises(UnknownModel, match=r"'niji' is not configured.*default, second"):
        engine.render(RenderTask(request(model="niji"), seed=1))


def test_missing_model_directory_is_one_clear_error(tmp_path: Path) -> None:
    registry = ModelRegistry(Settings.load({}, model=str(tmp_path / "nope")).engine())
    with pytest.raises(ModelLoadError) as info:
        registry.get()
    message = str(info.value)
    assert str(tmp_path / "nope") in message and "no such directory" in message
    assert "\n" not in message


def test_directory_that_is_not_a_pipeline_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"nothing")
    registry = ModelRegistry(Settings.load({}, model=str(tmp_path)).engine())
    with pytest.raises(ModelLoadError, match=r"no model_index\.json"):
        registry.get()


def test_broken_model_files_are_one_clear_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    registry = ModelRegistry(Settings.load({}, model=str(broken)).engine())
    with pytest.raises(ModelLoadError) as info:
        registry.get()
    assert str(broken) in str(info.value) and "\n" not in str(info.value)


def test_request_fields_reach_the_plan(engine: Engine) -> None:
    # Steps and stop come from the shared plan; a changed request changes the plan it runs.
    req = request(steps=6, stop=34)
    plan = sampling_plan(req)
    result = engine.render(RenderTask(req, seed=1))
    assert result.steps_run == plan.steps_run == 2


def test_preview_is_a_small_jpeg_of_the_linear_latent_decode() -> None:
    import io

    from gpu_worker.preview import SDXL_LATENT_RGB_BIAS, latents_to_images, preview_jpeg

    latents = torch.zeros(4, 4, 128, 128)
    latents[:, 0] = 1.0  # only the first latent channel: its RGB factors plus the bias
    image = latents_to_images(latents)[0]
    expected = [
        round((f + b + 1) * 127.5)
        for f, b in zip((0.3651, 0.4232, 0.4341), SDXL_LATENT_RGB_BIAS, strict=True)
    ]
    pixel = image.getpixel((5, 5))
    assert isinstance(pixel, tuple) and list(pixel) == expected
    data = preview_jpeg(latents)
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.format == "JPEG"
        assert preview.size == (128, 128)
    assert len(data) < 20_000
