"""Input images in the worker: decoded within a pixel budget, once each, one at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.prompt import parse
from bot.safety import MAX_PIXELS as BOT_MAX_PIXELS
from gpu_worker.errors import InvalidTask
from gpu_worker.imaging import MAX_INPUT_PIXELS, decode_image
from gpu_worker.inputs import task_for
from storage.contract import ImageRecord, Job, JobKind, JobStatus
from storage.images import FileImageStore
from storage.migrate import upgrade

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# One decoded 25 MP input is 100 MB (Pillow keeps RGB in 4 bytes a pixel); the four reduced
# inputs, the blend and the loop's own work stay within the rest. Decoding every input at full
# size, as the loop once did, peaked near 870 MB on this job.
PEAK_BOUND = 170 * 1024 * 1024


def _encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def _noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    bands = len(Image.new(mode, (1, 1)).getbands())
    pixels = np.random.default_rng(7).integers(0, 256, (height, width, bands), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(), mode)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"])
def test_every_mode_becomes_rgb_reduced_to_cover_the_render(mode: str) -> None:
    source = _noise(1000, 700, "RGB").convert(mode)
    image = decode_image(_encoded(source), fit=(128, 96))
    assert image.mode == "RGB"
    # 1000 // 128 = 7, 700 // 96 = 7: the largest whole factor that still covers 128x96.
    assert image.size == (143, 100)


def test_a_reduced_input_is_exactly_pillows_reduce_of_the_whole_image() -> None:
    source = _noise(1031, 517)  # neither side a multiple of the factor or of a strip
    image = decode_image(_encoded(source), fit=(100, 100))
    assert image.tobytes() == source.reduce(5).tobytes()
    rgba = _noise(900, 600, "RGBA")
    assert decode_image(_encoded(rgba), fit=(100, 100)).tobytes() == (
        rgba.convert("RGB").reduce(6).tobytes()
    )


def test_a_jpeg_is_decoded_at_a_reduced_scale() -> None:
    data = _encoded(_noise(2000, 1600), "JPEG")
    image = decode_image(data, fit=(256, 256))
    # draft picks 1/4 (500x400), which still covers 256x256; no further whole factor fits.
    assert image.size == (500, 400)


def test_without_a_fit_the_image_is_whole_and_too_large_ones_are_refused() -> None:
    assert decode_image(_encoded(_noise(300, 200, "RGBA"))).size == (300, 200)
    with pytest.raises(ValueError, match=r"an input image is 200x100; at most 19,999 pixels"):
        decode_image(_encoded(_noise(200, 100)), max_pixels=19_999)
    with pytest.raises(ValueError, match="not a readable image"):
        decode_image(b"\x89PNG\r\n\x1a\n broken")
    assert MAX_INPUT_PIXELS == BOT_MAX_PIXELS  # what the bot's check lets through is used


@pytest.mark.slow
async def test_a_job_with_the_most_image_prompts_stays_under_its_memory_bound(
    tmp_path: Path,
) -> None:
    """Four distinct 25 MP inputs (one listed twice) through the real worker loop."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'imagine.db'}"
    await asyncio.to_thread(upgrade, url)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.worker.peak_inputs",
        url,
        str(tmp_path),
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, stderr.decode()[-3000:]
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    assert report["succeeded"], report["error"]
    # Each input once, each reduced to cover the 1024x1024 render (5000 // 1024 = 4).
    assert report["inputs_seen"] == [[1250, 1250]] * 4
    assert report["peak_growth_bytes"] < PEAK_BOUND, report


class _NoParents:
    async def images(self, job_id: int) -> list[ImageRecord]:
        return []


async def test_references_load_into_the_task_with_their_weights(tmp_path: Path) -> None:
    store = FileImageStore(tmp_path / "images")
    red = await store.put(_encoded(Image.new("RGB", (40, 30), (220, 40, 40))))
    green = await store.put(_encoded(Image.new("RGB", (40, 30), (40, 220, 60))))
    [request] = parse(
        "a fox --sref https://x.example/r.png https://x.example/g.png --sw 300 --seed 1"
    )
    job = Job(
        id=7,
        kind=JobKind.REROLL,
        status=JobStatus.RUNNING,
        user_id=1,
        request=request,
        seed=1,
        cost=4,
        style_images=(red.sha256, green.sha256, red.sha256),
    )
    task = await task_for(job, _NoParents(), store)
    assert [image.getpixel((0, 0)) for image in task.style_images] == [
        (220, 40, 40),
        (40, 220, 60),
    ]
    assert (task.style_weight, task.character_images, task.init_images) == (300, (), ())
    upscale = dataclasses.replace(job, kind=JobKind.UPSCALE, input_images=(green.sha256,))
    assert (await task_for(upscale, _NoParents(), store)).style_images == ()
    missing = dataclasses.replace(job, character_images=("0" * 64,))
    with pytest.raises(InvalidTask, match=r"input image 000000000000\.\.\. is not in the image"):
        await task_for(missing, _NoParents(), store)
