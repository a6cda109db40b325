"""The engine serving Stable Cascade: the family is detected, and its jobs render through the
same ``Engine.render`` as SDXL's."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gpu_worker.engine import Engine
from gpu_worker.errors import InvalidTask, ModelLoadError
from gpu_worker.families.cascade_jobs import prior_guidance
from gpu_worker.models import ModelRegistry
from gpu_worker.preview import preview_jpeg
from gpu_worker.task import RenderTask, StepEvent
from imagine.settings import Settings
from storage.contract import Control, ControlKind, JobKind
from tests.worker.conftest import request


@pytest.fixture(scope="module")
def cascade_engine(tiny_cascade_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An engine whose default (and only) model is the tiny Stable Cascade."""
    settings = Settings.load(
        {}, model=str(tiny_cascade_dir), data_dir=tmp_path_factory.mktemp("data")
    )
    engine = Engine(ModelRegistry(settings.engine()), cpu_threads=1)
    assert engine.prepare() == str(tiny_cascade_dir)
    return engine


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_the_family_is_detected_and_registered(cascade_engine: Engine) -> None:
    assert cascade_engine.capabilities()["families"] == {"default": "cascade"}


def test_a_grid_image_equals_its_single_render_and_progress_has_a_preview(
    cascade_engine: Engine,
) -> None:
    events: list[StepEvent] = []
    grid = cascade_engine.render(RenderTask(request(), seed=5), on_step=events.append)
    assert [image.size for image in grid.images] == [(128, 128)] * 4
    assert grid.seeds == [5, 6, 7, 8] and grid.info["family"] == "cascade"
    # Two prior steps, then the ten decoder steps, each reported.
    assert [(e.step, e.total) for e in events] == [(n, 12) for n in range(1, 13)]
    assert preview_jpeg(events[0].latents)[:2] == b"\xff\xd8"  # a JPEG of the 16-channel latents
    single = cascade_engine.render(RenderTask(request(), seed=7, indices=(0,)))
    assert np.abs(_pixels(single.images[0]) - _pixels(grid.images[2])).max() <= 1


def test_weights_negative_prompt_and_image_conditioning_change_the_image(
    cascade_engine: Engine,
) -> None:
    def one(
        kind: JobKind = JobKind.IMAGINE, init_images: tuple[Image.Image, ...] = (), **changes: Any
    ) -> np.ndarray:
        strength = 0.85 if kind is JobKind.VARIATION else None
        task = RenderTask(
            request(**changes),
            seed=3,
            indices=(0,),
            kind=kind,
            init_images=init_images,
            strength=strength,
        )
        return _pixels(cascade_engine.render(task).images[0])

    base = one()
    weighted = one(segments=(("a red fox", 0.5), ("snow", 0.5)))
    negative = one(negative_prompt="fog")
    red = Image.new("RGB", (128, 128), (220, 30, 30))
    blue = Image.new("RGB", (128, 128), (30, 30, 220))
    varied_red = one(kind=JobKind.VARIATION, init_images=(red,))
    varied_blue = one(kind=JobKind.VARIATION, init_images=(blue,))
    for other in (weighted, negative, varied_red):
        assert np.abs(base - other).max() > 0
    # The source image is what conditions a variation: another source, another image.
    assert np.abs(varied_red - varied_blue).max() > 0


def test_stylize_sets_the_prior_guidance() -> None:
    assert prior_guidance(7.0) == 4.0  # --stylize 100, Stable Cascade's recommended value
    assert prior_guidance(9.0) == pytest.approx(5.1429)


def test_what_needs_sdxl_is_refused_with_the_reason(cascade_engine: Engine) -> None:
    with pytest.raises(InvalidTask, match="Upscale refines with SDXL, and this server has only"):
        cascade_engine.render(
            RenderTask(
                request(), seed=1, kind=JobKind.UPSCALE, init_images=(Image.new("RGB", (64, 64)),)
            )
        )
    with pytest.raises(InvalidTask, match="`--control canny`: model `default` is Stable Cascade"):
        cascade_engine.render(RenderTask(request(control=Control(ControlKind.CANNY, 0.5)), seed=1))


def test_a_configured_family_overrides_detection_and_a_bad_one_is_named(
    tiny_model_dir: Path,
) -> None:
    settings = Settings.load({}, model=str(tiny_model_dir), model_families={"default": "cascade"})
    assert ModelRegistry(settings.engine()).family(None) == "cascade"
    bad = Settings.load({}, model=str(tiny_model_dir), model_families={"default": "flux"})
    with pytest.raises(
        ModelLoadError, match="model_families\\['default'\\]: unknown model family 'flux'"
    ):
        ModelRegistry(bad.engine())
    typo = Settings.load({}, model=str(tiny_model_dir), model_families={"niji": "cascade"})
    with pytest.raises(ModelLoadError, match="there is no model 'niji'"):
        ModelRegistry(typo.engine())
    assert ModelRegistry(Settings.load({}, model=str(tiny_model_dir)).engine()).families() == {
        "default": "sdxl"
    }


def test_stop_ends_the_prior_early_and_the_decoder_paints_what_is_there(
    cascade_engine: Engine,
) -> None:
    events: list[StepEvent] = []
    stopped = cascade_engine.render(
        RenderTask(request(steps=4, stop=50), seed=2, indices=(0,)), on_step=events.append
    )
    assert stopped.steps_run == 2
    # Two of the prior's four steps, then the decoder's ten.
    assert [(e.step, e.total) for e in events] == [(n, 12) for n in range(1, 13)]
    full = cascade_engine.render(RenderTask(request(steps=4), seed=2, indices=(0,)))
    assert full.steps_run == 4
    assert np.abs(_pixels(stopped.images[0]) - _pixels(full.images[0])).max() > 0


def test_the_published_two_pipeline_layout_loads_its_prior_beside_it(
    tiny_cascade_dir: Path, tmp_path: Path
) -> None:
    from gpu_worker.tiny_cascade import write_tiny_cascade_pair

    pair = write_tiny_cascade_pair(tmp_path / "stable-cascade", seed=0)
    assert (tmp_path / "stable-cascade-prior" / "model_index.json").is_file()
    settings = Settings.load({}, model=str(tiny_cascade_dir), model_aliases={"pair": str(pair)})
    engine = Engine(ModelRegistry(settings.engine()), cpu_threads=1)
    assert engine.capabilities()["families"] == {"default": "cascade", "pair": "cascade"}
    # The same weights in either layout paint the same image.
    one = engine.render(RenderTask(request(), seed=4, indices=(0,)))
    two = engine.render(RenderTask(request(model="pair"), seed=4, indices=(0,)))
    assert np.abs(_pixels(one.images[0]) - _pixels(two.images[0])).max() <= 1
    # Without its prior beside it, one line says where it was looked for.
    alone = tmp_path / "decoder-only"
    shutil.copytree(pair, alone)
    lonely = Settings.load({}, model=str(alone))
    with pytest.raises(ModelLoadError, match="holds only the Stable Cascade decoder, so its prior"):
        Engine(ModelRegistry(lonely.engine()), cpu_threads=1).prepare()
