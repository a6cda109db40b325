"""End to end: the real bot, the fake Discord, real storage and the real worker on the tiny SDXL.

The worker runs in the same event loop as the bot (as in ``imagine run``), renders the 64 px
tiny model through the normal engine path, and the bot delivers what it stored.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from imagine.settings import Settings
from storage.contract import JobKind, JobStatus
from tests.bot.harness import BotRun, button_rows, ephemeral_reply
from tests.fakediscord import FakeDiscord, Message, User
from tests.worker.holding import HoldingEngine

pytestmark = pytest.mark.slow


@pytest.fixture
def e2e_settings(bot_environ: dict[str, str], tiny_model_dir: Path) -> Settings:
    """Bot settings with the tiny model as the default model."""
    import torch

    torch.set_num_threads(1)
    return Settings.load({**bot_environ, "IMAGINE_MODEL": str(tiny_model_dir)})


@pytest.fixture
def render_release() -> threading.Event:
    """Set it to let the first render go on past step 1."""
    return threading.Event()


@pytest.fixture
async def service(
    e2e_settings: Settings, fake_discord: FakeDiscord, render_release: threading.Event
) -> AsyncIterator[BotRun]:
    """Bot and worker in one event loop on one database, like ``imagine run``."""
    from gpu_worker.engine import Engine
    from gpu_worker.loop import run_worker
    from gpu_worker.models import ModelRegistry

    run = BotRun(e2e_settings)
    await run.start(fake_discord)
    assert run.storage is not None
    stop = asyncio.Event()
    # The first render pauses at step 1 until the test has seen its progress edit: a 64 px
    # render can finish between two progress polls.
    engine = HoldingEngine(Engine(ModelRegistry(e2e_settings.engine())), resume=render_release)
    worker = asyncio.create_task(
        run_worker(
            e2e_settings.worker(),
            stop=stop,
            queue=run.storage.queue,
            images=run.storage.images,
            engine=engine,
            worker_id="e2e-worker",
        )
    )
    try:
        yield run
    finally:
        stop.set()
        render_release.set()
        await asyncio.wait_for(worker, 60)
        await run.stop()


def _grid_done(message: Message) -> bool:
    return len(message.buttons) == 9 and bool(message.attachments)


def _size(message: Message) -> tuple[int, int]:
    with Image.open(io.BytesIO(message.attachments[0].data)) as image:
        return image.size


async def test_imagine_to_grid_then_u_v_and_reroll(
    fake_discord: FakeDiscord, service: BotRun, alice: User, render_release: threading.Event
) -> None:
    assert service.storage is not None
    queue = service.storage.queue
    command = await fake_discord.invoke_command(
        "imagine", {"prompt": "a red fox --ar 3:2 --seed 7"}, user=alice
    )
    response = await command.wait_acked()
    assert response.ephemeral and response.type == 5  # deferred at once
    message = await fake_discord.wait_for_message(lambda m: m.content.startswith("**a red fox"))
    assert message.content.endswith("(Waiting to start)") or message.content.endswith("%)")
    await fake_discord.wait_for(
        lambda: message.content.endswith("%)") and bool(message.attachments),
        timeout=120,
        what="a progress edit with its preview",
    )
    render_release.set()
    await fake_discord.wait_for(lambda: _grid_done(message), timeout=120, what="the grid")
    assert message.content == f"**a red fox --ar 3:2 --seed 7** - <@{alice.id}> (fast)"
    grid_w, grid_h = _size(message)
    assert grid_w > grid_h  # 3:2, rendered at the tiny model's native scale, 2x2
    assert button_rows(message) == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]
    grid_job = (await queue.user_jobs(alice.id, [JobStatus.SUCCEEDED]))[0]

    # U2: image 2 alone, no GPU work, no quota.
    before = {m.id for m in fake_discord.channel_messages()}
    await (
        await fake_discord.click(message, message.button("U2").custom_id or "", user=alice)
    ).wait_acked()
    single = await fake_discord.wait_for(
        lambda: next((m for m in fake_discord.channel_messages() if m.id not in before), None)
    )
    assert single.content.endswith(f"Image #2 <@{alice.id}>")
    stored = {r.index: r for r in await queue.images(grid_job.id)}
    assert single.attachments[0].data == await service.storage.images.get(stored[1].sha256)
    assert button_rows(single)[1][-1] == "🔄"

    # Upscale (Subtle) on that image: one image at twice the size, with Vary buttons.
    upscale_id = single.button("Upscale (Subtle)").custom_id or ""
    await (await fake_discord.click(single, upscale_id, user=alice)).wait_acked()
    upscaled = await fake_discord.wait_for_message(
        lambda m: "Upscaled (Subtle) image #2" in m.content
    )
    await fake_discord.wait_for(
        lambda: bool(upscaled.attachments) and len(upscaled.buttons) == 10,
        timeout=120,
        what="the upscaled image",
    )
    single_w, single_h = _size(single)
    assert _size(upscaled) == (2 * single_w, 2 * single_h)
    assert button_rows(upscaled) == [
        ["Vary (Subtle)", "Vary (Strong)"],
        ["Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom", "Make Square"],
        ["⬅️", "➡️", "⬆️", "⬇️"],
    ]

    # V3: a new grid, img2img from image 3.
    await (
        await fake_discord.click(message, message.button("V3").custom_id or "", user=alice)
    ).wait_acked()
    variation = await fake_discord.wait_for_message(lambda m: "Variations (Strong)" in m.content)
    await fake_discord.wait_for(lambda: _grid_done(variation), timeout=120, what="the V3 grid")
    v_job = next(
        j
        for j in await queue.user_jobs(alice.id, [JobStatus.SUCCEEDED])
        if j.kind is JobKind.VARIATION
    )
    assert (v_job.parent_job_id, v_job.parent_index) == (grid_job.id, 2)
    assert variation.attachments[0].data != message.attachments[0].data

    # 🔄: the same request with another seed.
    before = {m.id for m in fake_discord.channel_messages()}
    await (
        await fake_discord.click(message, message.button("🔄").custom_id or "", user=alice)
    ).wait_acked()
    reroll = await fake_discord.wait_for_message(lambda m: not m.ephemeral and m.id not in before)
    await fake_discord.wait_for(lambda: _grid_done(reroll), timeout=120, what="the reroll grid")
    r_job = next(
        j
        for j in await queue.user_jobs(alice.id, [JobStatus.SUCCEEDED])
        if j.kind is JobKind.REROLL
    )
    assert r_job.seed != grid_job.seed
    assert f"--seed {r_job.seed}" in reroll.content
    assert reroll.attachments[0].data != message.attachments[0].data

    info = await fake_discord.invoke_command("info", user=alice)
    text = await ephemeral_reply(fake_discord, info)
    assert "Quota: 13 of 40 images used per day" in text  # 3 grids and an upscale
    assert "Lifetime images: 13" in text
    fake_discord.assert_all_acked()
