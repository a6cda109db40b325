"""``imagine generate`` and ``imagine tiny-model`` through the real command line."""

from __future__ import annotations

import http.server
import io
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpu_worker.engine import Engine
from gpu_worker.models import ModelRegistry
from imagine.cli import main
from imagine.settings import Settings


def test_generate_writes_four_images_and_the_grid(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "generate",
            "a red fox --ar 3:2 --seed 7 --steps 4",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert set(summary) == {"seed", "width", "height", "images", "grid"}
    assert summary["seed"] == 7
    # 1216x832 at the tiny model's 64 px native resolution: 76x52, rounded to multiples of 8.
    assert (summary["width"], summary["height"]) == (80, 56)
    assert len(summary["images"]) == 4
    images = []
    for path in summary["images"]:
        assert Path(path).parent == out
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (80, 56)
            images.append(np.asarray(image.convert("RGB")))
    with Image.open(summary["grid"]) as grid:
        assert grid.size == (160, 112)
        grid_pixels = np.asarray(grid.convert("RGB"))
    assert np.array_equal(grid_pixels[:56, 80:], images[1])
    assert np.array_equal(grid_pixels[56:, :80], images[2])

    # The same command again gives the same pixels: the seed is the whole story.
    again = tmp_path / "again"
    assert (
        main(
            [
                "generate",
                "a red fox --ar 3:2 --seed 7 --steps 4",
                "--model",
                str(tiny_model_dir),
                "--out",
                str(again),
            ]
        )
        == 0
    )
    repeat = json.loads(capsys.readouterr().out)
    with Image.open(repeat["images"][3]) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), images[3])


def test_generate_without_seed_picks_and_reports_one(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["generate", "a boat --steps 2", "--model", str(tiny_model_dir), "--out", str(tmp_path)]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert 0 <= summary["seed"] <= 4_294_967_295
    assert Path(summary["grid"]).name == f"{summary['seed']}-grid.png"


def test_generate_with_a_missing_model_is_one_line_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-model"
    code = main(["generate", "a fox", "--model", str(missing), "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert str(missing) in lines[0] and "no such directory" in lines[0]


def test_generate_with_a_bad_prompt_exits_2(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["generate", "a fox --chaos 500", "--model", str(tiny_model_dir), "--out", str(tmp_path)]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert "--chaos" in captured.err and "500" in captured.err
    assert list(tmp_path.iterdir()) == []


def test_tiny_model_command_writes_a_loadable_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "tiny"
    assert main(["tiny-model", str(target), "--seed", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    for part in (
        "unet",
        "vae",
        "text_encoder",
        "text_encoder_2",
        "tokenizer",
        "tokenizer_2",
        "scheduler",
    ):
        assert (target / part).is_dir(), part
    assert (target / "tokenizer" / "vocab.json").is_file()
    assert (target / "tokenizer" / "merges.txt").is_file()
    out = tmp_path / "images"
    assert (
        main(["generate", "a fox --seed 1 --steps 2", "--model", str(target), "--out", str(out)])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["width"] == 64
    # Refuses to write over something that is there.
    assert main(["tiny-model", str(target)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_tiny_model_extras_wire_every_optional_component(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "tiny"
    assert main(["tiny-model", str(target), "--extras"]) == 0
    config = target / "extras.toml"
    assert capsys.readouterr().out.split() == [str(target), str(config)]
    settings = Settings.load({}, config_file=config)
    offered = Engine(ModelRegistry(settings.engine()), cpu_threads=1).capabilities()
    assert offered == {
        "models": ["default"],
        "families": {"default": "sdxl"},
        "profiles": {
            "draft": {"steps": 2, "guidance": 1.0, "size": 32},
            "turbo": {"steps": 2, "guidance": 0.0, "size": None},
        },
        "loras": {"tiny-style": {"trigger": "tinystyle", "weight": 0.8}},
        "controlnets": ["canny", "depth"],
        "ip_adapter": True,
        "translation": True,
    }
    out = tmp_path / "images"
    runs = {}
    for name, prompt in (("default", "a fox --seed 4"), ("turbo", "a fox --seed 4 --turbo")):
        assert main(["--config", str(config), "generate", prompt, "--out", str(out / name)]) == 0
        summary = json.loads(capsys.readouterr().out)
        runs[name] = [np.asarray(Image.open(path), dtype=float) for path in summary["images"]]
    assert (
        min(
            float(np.abs(a - b).mean()) for a, b in zip(runs["default"], runs["turbo"], strict=True)
        )
        > 1.0
    )
    assert main(["--config", str(config), "generate", "一只狐狸 --seed 4", "--out", str(out)]) == 0
    assert len(json.loads(capsys.readouterr().out)["images"]) == 4
    styled = "a fox --seed 4 --lora tiny-style:0.5 --draft"
    assert main(["--config", str(config), "generate", styled, "--out", str(out)]) == 0
    draft = json.loads(capsys.readouterr().out)
    assert (draft["width"], draft["height"]) == (32, 32)
    edges = tmp_path / "edges.png"
    Image.new("RGB", (48, 48), "white").save(edges)
    tower = ["--config", str(config), "generate", "a tower --control canny:0.9 --seed 2"]
    assert main([*tower, "--out", str(out / "c"), "--image", str(edges)]) == 0
    assert len(json.loads(capsys.readouterr().out)["images"]) == 4
    assert main([*tower, "--out", str(out / "c")]) == 2
    assert "`--control canny:0.9` needs an image" in capsys.readouterr().err
    assert main([*tower, "--out", str(out / "c"), "--image", str(tmp_path / "absent.png")]) == 2
    assert "cannot read --image" in capsys.readouterr().err
    assert (
        main(["--config", str(config), "generate", "a fox --lora pastel", "--out", str(out)]) == 1
    )
    assert "'pastel' is not available on this worker; available: tiny-style" in (
        capsys.readouterr().err
    )


def test_worker_command_with_a_missing_model_is_one_line_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IMAGINE_MODEL", str(tmp_path / "absent"))
    monkeypatch.delenv("IMAGINE_DATABASE_URL", raising=False)
    assert main(["worker", "--once"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("imagine worker: cannot load model")
    assert str(tmp_path / "absent") in lines[-1]


def test_worker_command_once_serves_the_queue_and_exits_0(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from storage.contract import GenerationRequest, JobKind, JobSpec, JobStatus
    from storage.db import Database
    from storage.migrate import upgrade
    from storage.queue import JobQueue

    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite+aiosqlite:///{data / 'imagine.db'}"
    upgrade(url)
    request = GenerationRequest(prompt="a fox", segments=(("a fox", 1.0),), steps=2)

    async def enqueue() -> int:
        db = await Database.open(url)
        try:
            spec = JobSpec(kind=JobKind.IMAGINE, request=request, cost=4)
            (job,) = await JobQueue(db).enqueue(7, [spec], interaction_id=1)
            return job.id
        finally:
            await db.close()

    async def status(job_id: int) -> JobStatus:
        db = await Database.open(url)
        try:
            return (await JobQueue(db).get(job_id)).status
        finally:
            await db.close()

    job_id = asyncio.run(enqueue())
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(data))
    monkeypatch.setenv("IMAGINE_MODEL", str(tiny_model_dir))
    monkeypatch.delenv("IMAGINE_DATABASE_URL", raising=False)
    assert main(["worker", "--once"]) == 0
    assert asyncio.run(status(job_id)) is JobStatus.SUCCEEDED


def test_generate_paints_a_style_reference_from_its_url(
    tiny_extras_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 160)).save(reference, format="PNG")
    served: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(reference.getvalue())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/ref.png"
        config = ["--config", str(tiny_extras_dir / "extras.toml"), "generate"]
        runs: list[list[np.ndarray]] = []
        for prompt in ("a fox --seed 4", f"a fox --seed 4 --sref {url} --sw 400"):
            assert main([*config, prompt, "--out", str(tmp_path / str(len(runs)))]) == 0
            summary = json.loads(capsys.readouterr().out)
            runs.append([np.asarray(Image.open(p), dtype=float) for p in summary["images"]])
    finally:
        server.shutdown()
        server.server_close()
    assert served == ["/ref.png"]
    plain, styled = runs
    assert min(float(np.abs(a - b).mean()) for a, b in zip(plain, styled, strict=True)) > 0.5
