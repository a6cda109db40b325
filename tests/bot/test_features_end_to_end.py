"""End to end with the optional components: the real bot, the fake Discord, the real worker on
the tiny SDXL and ``imagine tiny-model --extras``'s profiles, style, ControlNet, IP-Adapter and
translation model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imagine.settings import Settings
from storage.contract import JobStatus, SpeedMode
from tests.bot.harness import BotRun, ephemeral_reply, eventually, png
from tests.fakediscord import FakeDiscord, Message, User

pytestmark = pytest.mark.slow


@pytest.fixture
async def service(
    bot_environ: dict[str, str], tiny_extras_dir: Path, fake_discord: FakeDiscord
) -> AsyncIterator[BotRun]:
    """Bot and worker in one event loop, the worker configured by ``extras.toml``."""
    import torch

    from gpu_worker.engine import Engine
    from gpu_worker.loop import run_worker
    from gpu_worker.models import ModelRegistry

    torch.set_num_threads(1)
    settings = Settings.load(bot_environ, config_file=tiny_extras_dir / "extras.toml")
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
            engine=Engine(ModelRegistry(settings.engine()), cpu_threads=1),
            worker_id="extras-worker",
        )
    )
    try:
        # The bot checks names against what the worker registered at start.
        await eventually(lambda: _registered(run))
        yield run
    finally:
        stop.set()
        await asyncio.wait_for(worker, 60)
        await run.stop()


async def _registered(run: BotRun) -> bool | None:
    assert run.storage is not None
    workers = (await run.storage.queue.stats()).workers
    return True if workers and workers[0].capabilities else None


async def _grid(fake: FakeDiscord, user: User, prompt: str, **options: object) -> Message:
    interaction = await fake.invoke_command("imagine", {"prompt": prompt}, user=user, **options)  # type: ignore[arg-type]
    assert (await ephemeral_reply(fake, interaction)).startswith("Queued 1 job")
    title = f"**{prompt.split(' --')[0]}"
    return await fake.wait_for_message(
        lambda m: m.content.startswith(title) and len(m.buttons) >= 9 and bool(m.attachments),
        timeout=120,
    )


async def test_turbo_draft_style_control_and_chinese_grids_are_delivered(
    fake_discord: FakeDiscord, service: BotRun, alice: User
) -> None:
    assert service.storage is not None
    queue = service.storage.queue
    turbo = await _grid(fake_discord, alice, "a lighthouse --turbo --lora tiny-style:0.6 --seed 3")
    assert turbo.content.endswith(f"<@{alice.id}> (turbo)")
    draft = await _grid(fake_discord, alice, "a harbour --draft --seed 3")
    assert (draft.attachments[0].width, draft.attachments[0].height) == (64, 64)  # 2x2 of 32 px
    # E1: the first cell again with the default profile, at its seed, at the full size.
    await fake_discord.click(draft, draft.button("E1").custom_id or "", user=alice)
    enhanced = await fake_discord.wait_for_message(
        lambda m: "Enhanced image #1" in m.content and len(m.buttons) == 9 and bool(m.attachments),
        timeout=120,
    )
    assert (enhanced.attachments[0].width, enhanced.attachments[0].height) == (128, 128)
    picture = [("edges.png", png((250, 250, 250), (48, 48)))]
    await _grid(fake_discord, alice, "a tower --control canny:0.8 --seed 3", attachments=picture)
    chinese = await _grid(fake_discord, alice, "一只红色的狐狸 --seed 3")
    jobs = {
        job.request.prompt: job for job in await queue.user_jobs(alice.id, [JobStatus.SUCCEEDED])
    }
    assert jobs["a lighthouse"].rendered == {"profile": "turbo", "loras": [["tiny-style", 0.6]]}
    assert jobs["a lighthouse"].request.mode is SpeedMode.TURBO
    done = await queue.user_jobs(alice.id, [JobStatus.SUCCEEDED])
    [draft_job] = [job for job in done if job.request.mode is SpeedMode.DRAFT]
    [better] = [job for job in done if job.parent_job_id == draft_job.id]
    assert draft_job.rendered == {"profile": "draft"}
    assert better.rendered == {"profile": "default"} and better.seed == draft_job.seed
    assert jobs["a tower"].rendered == {
        "profile": "default",
        "control": {"kind": "canny", "scale": 0.8},
    }
    english = jobs["一只红色的狐狸"].rendered["translation"]["prompt"]  # type: ignore[index]
    assert chinese.content.startswith(f"**一只红色的狐狸 --seed 3** - <@{alice.id}> (fast)")
    assert chinese.content.endswith(f"\nPainted in English: {english}")
    assert all(job.gpu_seconds and job.gpu_seconds > 0 for job in jobs.values())
    # Every result was delivered (the bot is idle again before it stops).
    await eventually(lambda: _all_delivered(service, alice))


async def _all_delivered(run: BotRun, user: User) -> bool | None:
    assert run.storage is not None
    done = await run.storage.queue.user_jobs(user.id, [JobStatus.SUCCEEDED])
    return True if len(done) == 5 and all(job.delivered_at for job in done) else None
