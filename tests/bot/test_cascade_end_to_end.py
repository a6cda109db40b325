"""End to end on Stable Cascade: the real bot, the fake Discord, real storage and the real worker
with the tiny SDXL as its default model and the tiny Stable Cascade as ``--model cascade``.

The model's family is detected from its model_index.json; the grid, U1, the single's Upscale
(through the SDXL upscaler), V1 and a re-roll all run through the normal engine path.
"""

from __future__ import annotations

import asyncio
import io
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from imagine.settings import Settings
from storage.contract import JobKind, JobStatus
from tests.bot.harness import BotRun, button_rows, ephemeral_reply, eventually
from tests.fakediscord import FakeDiscord, Message, User
from tests.worker.holding import HoldingEngine

pytestmark = pytest.mark.slow


@pytest.fixture
def render_release() -> threading.Event:
    """Set it to let the first render go on past step 1."""
    return threading.Event()


@pytest.fixture
async def service(
    bot_environ: dict[str, str],
    tiny_model_dir: Path,
    tiny_cascade_dir: Path,
    fake_discord: FakeDiscord,
    render_release: threading.Event,
) -> AsyncIterator[BotRun]:
    """Bot and worker in one event loop on one database, like ``imagine run``."""
    import torch

    from gpu_worker.engine import Engine
    from gpu_worker.loop import run_worker
    from gpu_worker.models import ModelRegistry

    torch.set_num_threads(1)
    settings = Settings.load(
        {
            **bot_environ,
            "IMAGINE_MODEL": str(tiny_model_dir),
            "IMAGINE_MODEL_ALIASES": f'{{"cascade": "{tiny_cascade_dir}"}}',
        }
    )
    run = BotRun(settings)
    await run.start(fake_discord)
    assert run.storage is not None
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_worker(
            settings.worker(),
            stop=stop,
            queue=run.storage.queue,
            images=run.storage.images,
            # The first render pauses at step 1 until the test has seen its progress edit.
            engine=HoldingEngine(
                Engine(ModelRegistry(settings.engine()), cpu_threads=1), resume=render_release
            ),
            worker_id="cascade-worker",
        )
    )
    try:
        # The bot reads each model's family from what the worker registered.
        await eventually(lambda: _registered(run))
        yield run
    finally:
        stop.set()
        render_release.set()
        await asyncio.wait_for(worker, 60)
        await run.stop()


async def _registered(run: BotRun) -> bool | None:
    assert run.storage is not None
    workers = (await run.storage.queue.stats()).workers
    return True if workers and workers[0].capabilities else None


def _grid_done(message: Message) -> bool:
    return len(message.buttons) == 9 and bool(message.attachments)


def _size(message: Message) -> tuple[int, int]:
    with Image.open(io.BytesIO(message.attachments[0].data)) as image:
        return image.size


async def _new_message(fake: FakeDiscord, before: set[int], text: str) -> Message:
    return await fake.wait_for_message(lambda m: m.id not in before and text in m.content)


async def test_cascade_grid_u1_upscale_v1_and_reroll(
    fake_discord: FakeDiscord, service: BotRun, alice: User, render_release: threading.Event
) -> None:
    assert service.storage is not None
    queue = service.storage.queue
    prompt = "a red fox::2 snow::1 --model cascade --ar 4:1 --no fog --tile --steps 2 --seed 7"
    command = await fake_discord.invoke_command("imagine", {"prompt": prompt}, user=alice)
    assert (await ephemeral_reply(fake_discord, command)).startswith("Queued 1 job")
    message = await fake_discord.wait_for_message(lambda m: m.content.startswith("**a red fox"))
    await fake_discord.wait_for(
        lambda: bool(re.search(r"\(\d+%\)", message.content)) and bool(message.attachments),
        timeout=120,
        what="a progress edit with its preview",
    )
    render_release.set()
    await fake_discord.wait_for(lambda: _grid_done(message), timeout=120, what="the Cascade grid")
    grid_job = (await queue.user_jobs(alice.id, [JobStatus.SUCCEEDED]))[0]
    images = [r for r in await queue.images(grid_job.id) if 0 <= r.index < 4]
    # Cascade's size rule: SDXL's 4:1 size (2048x512) at the tiny model's 128 px native side
    # is 256x64, and sides are multiples of 128.
    assert {(r.width, r.height) for r in images} == {(256, 128)}
    assert _size(message) == (512, 256)
    assert button_rows(message) == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]
    # --tile is accepted and noted: Stable Cascade paints it as a plain image.
    assert "Not as written: --tile (Stable Cascade does not tile" in message.content
    assert grid_job.rendered is not None and grid_job.rendered.get("family") == "cascade"
    assert len({r.sha256 for r in images}) == 4  # four different images

    # U1: image 1 alone, no GPU work.
    before = {m.id for m in fake_discord.channel_messages()}
    await (
        await fake_discord.click(message, message.button("U1").custom_id or "", user=alice)
    ).wait_acked()
    single = await _new_message(fake_discord, before, "Image #1")
    stored = {r.index: r for r in images}
    assert single.attachments[0].data == await service.storage.images.get(stored[0].sha256)

    # Upscale (Subtle) on the single: the SDXL upscaler, twice the size.
    upscale_id = single.button("Upscale (Subtle)").custom_id or ""
    await (await fake_discord.click(single, upscale_id, user=alice)).wait_acked()
    upscaled = await fake_discord.wait_for_message(
        lambda m: "Upscaled (Subtle) image #1" in m.content
    )
    await fake_discord.wait_for(
        lambda: bool(upscaled.attachments) and len(upscaled.buttons) == 10,
        timeout=120,
        what="the upscaled image",
    )
    assert _size(upscaled) == (512, 256)

    # Zoom Out on the upscaled single: Stable Cascade cannot outpaint; refused, nothing queued.
    jobs_before = len(await queue.user_jobs(alice.id, list(JobStatus)))
    zoom = await fake_discord.click(
        upscaled, upscaled.button("Zoom Out 2x").custom_id or "", user=alice
    )
    refusal = await ephemeral_reply(fake_discord, zoom)
    assert "need SDXL inpainting, and model `cascade` is Stable Cascade" in refusal
    assert len(await queue.user_jobs(alice.id, list(JobStatus))) == jobs_before

    # V1: a new grid conditioned on image 1 through the prior's image encoder.
    await (
        await fake_discord.click(message, message.button("V1").custom_id or "", user=alice)
    ).wait_acked()
    variation = await fake_discord.wait_for_message(lambda m: "Variations (Strong)" in m.content)
    await fake_discord.wait_for(lambda: _grid_done(variation), timeout=120, what="the V1 grid")
    v_job = next(
        j
        for j in await queue.user_jobs(alice.id, [JobStatus.SUCCEEDED])
        if j.kind is JobKind.VARIATION
    )
    assert (v_job.parent_job_id, v_job.parent_index) == (grid_job.id, 0)
    assert variation.attachments[0].data != message.attachments[0].data

    # 🔄: the same request with another seed.
    before = {m.id for m in fake_discord.channel_messages()}
    await (
        await fake_discord.click(message, message.button("🔄").custom_id or "", user=alice)
    ).wait_acked()
    reroll = await fake_discord.wait_for_message(lambda m: not m.ephemeral and m.id not in before)
    await fake_discord.wait_for(lambda: _grid_done(reroll), timeout=120, what="the re-roll grid")
    r_job = next(
        j
        for j in await queue.user_jobs(alice.id, [JobStatus.SUCCEEDED])
        if j.kind is JobKind.REROLL
    )
    assert r_job.seed != grid_job.seed and r_job.request.model == "cascade"
    assert reroll.attachments[0].data != message.attachments[0].data
    fake_discord.assert_all_acked()


async def test_cascade_refuses_sdxl_only_parameters(
    fake_discord: FakeDiscord, service: BotRun, alice: User, render_release: threading.Event
) -> None:
    render_release.set()
    for prompt, expected in [
        (
            "a fox --model cascade --lora ink",
            "`--lora ink`: model `cascade` is Stable Cascade, which takes no LoRA styles",
        ),
        (
            "a fox --model cascade --turbo",
            "`--turbo`: model `cascade` is Stable Cascade, which has no turbo profile",
        ),
    ]:
        command = await fake_discord.invoke_command("imagine", {"prompt": prompt}, user=alice)
        assert expected in await ephemeral_reply(fake_discord, command)
    assert service.storage is not None
    assert await service.storage.queue.user_jobs(alice.id, list(JobStatus)) == []
