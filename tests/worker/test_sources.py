"""ModelScope as a model source: a cache laid out as the modelscope package lays it out, offline."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpu_worker.errors import ModelLoadError
from gpu_worker.sources import cached, parse, resolve
from imagine.cli import main
from imagine.commands import doctor
from imagine.settings import Settings

REPO = "AI-ModelScope/tiny-sdxl"


@pytest.fixture
def modelscope_cache(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``MODELSCOPE_CACHE`` holding the tiny SDXL at revision v1.0, with downloads off."""
    root = tmp_path / "modelscope"
    # modelscope_hub's layout: {cache}/models/{owner}--{name}/snapshots/{revision}/...
    snapshot = root / "models" / REPO.replace("/", "--") / "snapshots" / "v1.0"
    shutil.copytree(tiny_model_dir, snapshot)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return snapshot


def test_sources_parse_into_their_kinds(tmp_path: Path) -> None:
    assert parse("stabilityai/stable-diffusion-xl-base-1.0").kind == "hub"
    assert parse(str(tmp_path)).kind == "local"
    source = parse("modelscope:AI-ModelScope/sdxl-turbo@v1.0.1/unet")
    assert (source.kind, source.repo, source.revision, source.path) == (
        "modelscope",
        "AI-ModelScope/sdxl-turbo",
        "v1.0.1",
        "unet",
    )
    with pytest.raises(ModelLoadError, match="modelscope:ORG/NAME@REVISION"):
        parse("modelscope:no-slash")


def test_a_cached_modelscope_model_resolves_offline_to_its_snapshot(
    modelscope_cache: Path,
) -> None:
    assert resolve(f"modelscope:{REPO}@v1.0") == str(modelscope_cache)
    # Without a revision the only cached one is used, as snapshot_download does offline.
    assert resolve(f"modelscope:{REPO}") == str(modelscope_cache)
    assert resolve(f"modelscope:{REPO}@v1.0/unet") == str(modelscope_cache / "unet")
    assert cached(f"modelscope:{REPO}@v2.0") is None


def test_generate_renders_a_modelscope_model_as_the_local_one(
    modelscope_cache: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = []
    for name, model in (("ms", f"modelscope:{REPO}@v1.0"), ("local", str(tiny_model_dir))):
        code = main(
            [
                "generate",
                "a fox --seed 3 --steps 2",
                "--model",
                model,
                "--out",
                str(tmp_path / name),
            ]
        )
        captured = capsys.readouterr()
        assert code == 0, captured.err
        with Image.open(json.loads(captured.out)["grid"]) as grid:
            runs.append(np.asarray(grid.convert("RGB")))
    assert np.array_equal(runs[0], runs[1])


def test_a_missing_modelscope_model_is_one_line_naming_id_and_source(
    modelscope_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["generate", "a fox", "--model", "modelscope:AI-ModelScope/nothere", "--out", str(tmp_path)]
    )
    captured = capsys.readouterr()
    assert code == 1
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "modelscope:AI-ModelScope/nothere" in lines[0]
    assert "not in the ModelScope cache" in lines[0] and "HF_HUB_OFFLINE" in lines[0]


def test_doctor_says_where_each_model_comes_from(
    modelscope_cache: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings.load(
        {"IMAGINE_DATA_DIR": str(tmp_path / "data")},
        model=f"modelscope:{REPO}@v1.0",
        model_aliases={"gone": "modelscope:AI-ModelScope/sdxl-turbo", "here": str(tiny_model_dir)},
        controlnets={"canny": "modelscope:AI-ModelScope/controlnet-canny-sdxl-1.0"},
    )
    doctor.run(argparse.Namespace(), settings)
    out = capsys.readouterr().out
    assert (
        f"[ok]   model: modelscope:{REPO}@v1.0 (ModelScope ({REPO} at v1.0), "
        f"in the ModelScope cache: {modelscope_cache}); family SDXL" in out
    )
    assert "[warn] model gone: modelscope:AI-ModelScope/sdxl-turbo (ModelScope (" in out
    assert "is not in the ModelScope cache yet" in out
    assert f"[ok]   model here: {tiny_model_dir} (a local diffusers model); family SDXL" in out
    assert "[warn] controlnet canny: modelscope:AI-ModelScope/controlnet-canny-sdxl-1.0" in out
