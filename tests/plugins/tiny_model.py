"""Pytest fixtures: tiny_model.

``tiny_model_dir`` builds the tiny random-weight SDXL once per test session and returns its
directory, loadable with ``from_pretrained`` like any real checkpoint.
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
