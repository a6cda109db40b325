"""Hugging Face hub ids for the optional components: a hub cache laid out as huggingface_hub
lays it out (``models--ORG--NAME/snapshots/REV/`` and ``refs/main``), offline."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gpu_worker.engine import Engine
from gpu_worker.errors import ModelLoadError
from gpu_worker.extras import Extras
from gpu_worker.models import ModelRegistry
from gpu_worker.sources import cached, parse, resolve
from gpu_worker.task import RenderTask
from gpu_worker.tiny_extras import STYLE_TRIGGER
from imagine.commands import doctor
from imagine.settings import Settings
from storage.contract import SpeedMode
from tests.worker.conftest import pixels, request
from tests.worker.test_references import picture

REVISION = "0123456789abcdef0123456789abcdef01234567"
IP_WEIGHTS = "imagine-test/ip-adapter/sdxl_models/ip-adapter_tiny.safetensors"
IP_ENCODER = "imagine-test/ip-adapter/sdxl_models/image_encoder"


def publish(cache: Path, repo: str, files: dict[str, Path]) -> Path:
    """Put ``files`` (path in the repository -> local file or folder) in the hub cache."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / REVISION
    for inside, local in files.items():
        target = snapshot / inside
        target.parent.mkdir(parents=True, exist_ok=True)
        if local.is_dir():
            shutil.copytree(local, target)
        else:
            shutil.copyfile(local, target)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(REVISION)
    return snapshot


@pytest.fixture
def hub_cache(tiny_extras_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``HF_HUB_CACHE`` holding the tiny components as hub repositories, with downloads off."""
    cache = tmp_path / "hub"
    extras = tiny_extras_dir / "extras"
    publish(cache, "imagine-test/turbo-unet", {".": extras / "turbo-unet"})
    # LCM-LoRA's layout: the repository's one file under diffusers' default name.
    publish(
        cache,
        "imagine-test/lcm-lora",
        {"pytorch_lora_weights.safetensors": extras / "lcm-lora.safetensors"},
    )
    publish(
        cache,
        "imagine-test/styles",
        {
            "tiny-style.safetensors": extras / "loras" / "tiny-style.safetensors",
            "other.safetensors": extras / "lcm-lora.safetensors",
        },
    )
    publish(
        cache,
        "imagine-test/ip-adapter",
        {
            "sdxl_models/ip-adapter_tiny.safetensors": extras
            / "ip-adapter"
            / "ip-adapter_tiny.safetensors",
            "sdxl_models/image_encoder": extras / "ip-adapter" / "image_encoder",
        },
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def hub_settings(model: Path, **changes: Any) -> Settings:
    """The tiny extras' profiles, style and IP-Adapter, each given by a hub id."""
    values: dict[str, Any] = {
        "model": str(model),
        "profiles": {
            "turbo": {"unet": "imagine-test/turbo-unet", "steps": 2},
            "draft": {
                "lora": "imagine-test/lcm-lora",
                "scheduler": "lcm",
                "steps": 2,
                "guidance": 1.0,
                "size": 32,
            },
        },
        "loras": {
            "tiny-style": {
                "path": "imagine-test/styles/tiny-style.safetensors",
                "trigger": STYLE_TRIGGER,
                "weight": 0.8,
            }
        },
        "ip_adapter": IP_WEIGHTS,
        "ip_adapter_image_encoder": IP_ENCODER,
    }
    values.update(changes)
    return Settings.load({}, **values)


def grid(engine: Engine, seed: int = 3, **task: Any) -> list[np.ndarray]:
    changes = task.pop("changes", {})
    result = engine.render(RenderTask(request(**changes), seed=seed, **task))
    return [pixels(image) for image in result.images]


def test_hub_ids_name_a_repository_and_a_path_inside_it(hub_cache: Path) -> None:
    source = parse("h94/IP-Adapter/sdxl_models/ip-adapter_sdxl.safetensors")
    assert (source.kind, source.repo, source.path) == (
        "hub",
        "h94/IP-Adapter",
        "sdxl_models/ip-adapter_sdxl.safetensors",
    )
    whole = parse("latent-consistency/lcm-lora-sdxl")
    assert (whole.kind, whole.repo, whole.path) == ("hub", "latent-consistency/lcm-lora-sdxl", None)
    snapshot = hub_cache / "models--imagine-test--ip-adapter" / "snapshots" / REVISION
    assert resolve(IP_WEIGHTS) == str(snapshot / "sdxl_models" / "ip-adapter_tiny.safetensors")
    assert resolve(IP_ENCODER) == str(snapshot / "sdxl_models" / "image_encoder")
    # Offline a whole repository is its cached snapshot too.
    assert resolve("imagine-test/ip-adapter") == str(snapshot)
    assert cached("imagine-test/ip-adapter/sdxl_models/nothere.safetensors") is None


def test_hub_components_in_the_cache_are_offered_and_paint_as_the_local_ones(
    hub_cache: Path, tiny_extras_dir: Path, extras_engine: Engine
) -> None:
    engine = Engine(ModelRegistry(hub_settings(tiny_extras_dir).engine()), cpu_threads=1)
    engine.prepare()
    assert engine.features.problems == []
    offered = engine.capabilities()
    assert sorted(offered["profiles"]) == ["draft", "turbo"]
    assert sorted(offered["loras"]) == ["tiny-style"]
    assert offered["ip_adapter"] is True
    tasks: list[dict[str, Any]] = [
        {"changes": {"mode": SpeedMode.TURBO}},
        {"changes": {"mode": SpeedMode.DRAFT}},
        {"changes": {"loras": (("tiny-style", 1.0),)}},
        {"init_images": (picture(),)},
    ]
    for task in tasks:
        ours, local = grid(engine, **dict(task)), grid(extras_engine, **dict(task))
        assert all(np.array_equal(a, b) for a, b in zip(ours, local, strict=True)), task


def test_uncached_hub_components_are_offered_and_fail_their_job_naming_id_and_cache(
    hub_cache: Path, tiny_extras_dir: Path
) -> None:
    settings = hub_settings(
        tiny_extras_dir,
        profiles={"turbo": {"unet": "imagine-test/absent-unet"}},
        loras={"ink": {"path": "imagine-test/absent-styles/ink.safetensors"}},
        ip_adapter="imagine-test/ip-adapter/sdxl_models/absent.safetensors",
    )
    engine = Engine(ModelRegistry(settings.engine()), cpu_threads=1)
    engine.prepare()
    assert engine.features.problems == []
    assert sorted(engine.capabilities()["profiles"]) == ["turbo"]
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"changes": {"mode": SpeedMode.TURBO}},
            "'imagine-test/absent-unet' from Hugging Face repository imagine-test/absent-unet: "
            f"it is not in the Hugging Face cache ({hub_cache})",
        ),
        (
            {"changes": {"loras": (("ink", 1.0),)}},
            "'imagine-test/absent-styles/ink.safetensors' from Hugging Face repository "
            f"imagine-test/absent-styles: it is not in the Hugging Face cache ({hub_cache})",
        ),
        (
            {"init_images": (picture(),)},
            "'imagine-test/ip-adapter/sdxl_models/absent.safetensors' from Hugging Face "
            f"repository imagine-test/ip-adapter: its cached snapshot ({hub_cache}",
        ),
    ]
    for task, where in cases:
        with pytest.raises(ModelLoadError) as failure:
            grid(engine, **task)
        message = str(failure.value)
        assert where in message, message
        assert "downloads are off (HF_HUB_OFFLINE)" in message


def test_an_ip_adapter_given_as_a_whole_repository_is_refused(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="ip_adapter 'h94/IP-Adapter' names a whole repository"):
        Extras.from_settings(hub_settings(tiny_model_dir, ip_adapter="h94/IP-Adapter"))


def test_doctor_agrees_with_the_worker_on_hub_components(
    hub_cache: Path, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = hub_settings(
        tiny_model_dir,
        data_dir=tmp_path / "data",
        loras={"ink": {"path": "imagine-test/absent-styles/ink.safetensors"}},
        ip_adapter="h94/IP-Adapter",
    )
    doctor.run(argparse.Namespace(), settings)
    out = capsys.readouterr().out
    snapshot = hub_cache / "models--imagine-test--turbo-unet" / "snapshots" / REVISION
    assert (
        "[ok]   profile turbo unet: imagine-test/turbo-unet (Hugging Face hub, in the local hub "
        f"cache: {snapshot})" in out
    )
    assert "[ok]   profile draft lora: imagine-test/lcm-lora (Hugging Face hub" in out
    assert (
        "[warn] LoRA ink: imagine-test/absent-styles/ink.safetensors (Hugging Face hub) is not "
        f"in the Hugging Face cache ({hub_cache}) and downloads are off (HF_HUB_OFFLINE)" in out
    )
    assert "[ok]   ip_adapter_image_encoder: " + IP_ENCODER in out
    assert "[FAIL] optional features: ip_adapter 'h94/IP-Adapter' names a whole repository" in out
