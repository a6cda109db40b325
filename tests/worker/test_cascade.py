"""The tiny Stable Cascade: written by ``imagine tiny-model --cascade``, loaded, rendered."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpu_worker.families import cascade
from imagine.cli import main


@pytest.fixture(scope="module")
def tiny_cascade(tmp_path_factory: pytest.TempPathFactory) -> cascade.CascadeModel:
    """The tiny Stable Cascade written through the command line and loaded from disk."""
    directory = tmp_path_factory.mktemp("tiny-cascade") / "model"
    assert main(["tiny-model", str(directory), "--cascade"]) == 0
    assert cascade.is_cascade(directory)
    return cascade.load("cascade", str(directory), directory, torch.device("cpu"), cuda=False)


def _render(model: cascade.CascadeModel, indices: list[int], **changes: object) -> list[np.ndarray]:
    prompt = str(changes.pop("prompt", "a red fox"))
    negative = changes.pop("negative_prompt", None)
    text = cascade.encode(model, [(prompt, 1.0)], negative)  # type: ignore[arg-type]
    values: dict[str, object] = {
        "text": text,
        "width": 128,
        "height": 128,
        "seed": 11,
        "steps": 2,
        "guidance": 4.0,
    }
    values.update(changes)
    images = cascade.render(model, indices=indices, **values)  # type: ignore[arg-type]
    return [np.asarray(image.convert("RGB"), dtype=np.int16) for image in images]


def test_grid_image_i_equals_a_one_image_render_at_seed_plus_i(
    tiny_cascade: cascade.CascadeModel,
) -> None:
    grid = _render(tiny_cascade, [0, 1, 2, 3])
    assert [image.shape for image in grid] == [(128, 128, 3)] * 4
    alone = _render(tiny_cascade, [2])[0]
    # Batched and single float math may round one 8-bit level apart, never more.
    assert np.abs(alone - grid[2]).max() <= 1
    # ...while different seeds give different images.
    assert np.abs(grid[1] - grid[2]).max() > 10
    shifted = _render(tiny_cascade, [1], seed=12)[0]
    assert np.abs(shifted - grid[2]).max() <= 1


def test_sizes_follow_cascades_rule(tiny_cascade: cascade.CascadeModel) -> None:
    assert tiny_cascade.native == 128
    # SDXL's 1344x768 (16:9) at 128 px native: 168x96, snapped to multiples of 128.
    assert tiny_cascade.size(1344, 768) == (128, 128)
    assert tiny_cascade.size(2048, 1024) == (256, 128)
    image = _render(tiny_cascade, [0], width=256, height=128)[0]
    assert image.shape == (128, 256, 3)


def test_the_prompt_and_negative_prompt_steer_the_image(
    tiny_cascade: cascade.CascadeModel,
) -> None:
    base = _render(tiny_cascade, [0])[0]
    other = _render(tiny_cascade, [0], prompt="a blue whale")[0]
    negative = _render(tiny_cascade, [0], negative_prompt="fur")[0]
    assert np.abs(base - other).max() > 0
    assert np.abs(base - negative).max() > 0
