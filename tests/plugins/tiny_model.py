"""Pytest fixtures: tiny_model.

``tiny_model_dir`` builds the tiny random-weight SDXL once per test session and returns its
directory, loadable with ``from_pretrained`` like any real checkpoint. ``tiny_extras_dir`` is
another tiny SDXL with every optional component beside it and ``extras.toml`` wiring them.
``tiny_cascade_dir`` is the tiny random-weight Stable Cascade (``imagine tiny-model --cascade``).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny SDXL pipeline (64 px native, random weights, seed 0)."""
    import torch

    from gpu_worker.tiny import write_tiny_model

    torch.set_num_threads(1)
    return write_tiny_model(tmp_path_factory.mktemp("tiny-sdxl") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_extras_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SDXL with the tiny optional components and ``extras.toml`` (``--extras``)."""
    import torch

    from gpu_worker.tiny import write_tiny_model
    from gpu_worker.tiny_extras import write_extras

    torch.set_num_threads(1)
    directory = write_tiny_model(tmp_path_factory.mktemp("tiny-extras") / "model", seed=0)
    write_extras(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_cascade_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Stable Cascade (128 px native, random weights, seed 0)."""
    import torch

    from gpu_worker.tiny_cascade import write_tiny_cascade

    torch.set_num_threads(1)
    return write_tiny_cascade(tmp_path_factory.mktemp("tiny-cascade") / "model", seed=0)
