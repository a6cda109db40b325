"""An ``--sref`` grid end to end: the real bot fetching the reference from the fake internet, the
fake Discord, and the real worker painting through the tiny IP-Adapter of ``imagine tiny-model
--extras``; its re-roll keeps the reference."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imagine.settings import Settings
from storage.contract import Job, JobKind, JobStatus
from tests.bot.harness import BotRun, ephemeral_reply, eventually
from tests.bot.internet import SITE, Internet, picture, running_internet
from tests.fakediscord import FakeDiscord, Message, User

pytestmark = pytest.mark.slow

STYLE = f"{SITE}/style.png"


@pytest.fixture
async def service(
    bot_environ: dict[str, str], tiny_extras_dir: Path, fake_discord: FakeDiscord
) -> AsyncIterator[tuple[BotRun, Internet]]:
    """Bot (downloading from the fake internet) and the extras worker in one event loop."""
    import torch

    from gpu_worker.engine import Engine
    from gpu_worker.loop import run_worker
    from gpu_worker.models import ModelRegistry

    torch.set_num_threads(1)
    settings = Settings.load(bot_environ, config_file=tiny_extras_dir / "extras.toml")
    async with running_internet() as internet:
        run = BotRun(settings, fetch_session=internet.session, resolver=internet.resolve)
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
            # References are kept only once a worker with an IP-Adapter has registered.
            await eventually(lambda: _adapter_registered(run), within=60)
            yield run, internet
        finally:
            stop.set()
            await asyncio.wait_for(worker, 60)
            await run.stop()


async def _adapter_registered(run: BotRun) -> bool | None:
    assert run.storage is not None
    workers = (await run.storage.queue.stats()).workers
    return True if any((w.capabilities or {}).get("ip_adapter") for w in workers) else None


async def _delivered(run: BotRun, job_id: int) -> Job | None:
    assert run.storage is not None
    job = await run.storage.queue.get(job_id)
    assert job.status not in (JobStatus.FAILED, JobStatus.CANCELLED), job.error
    return job if job.status is JobStatus.SUCCEEDED and job.delivered_at else None


async def _grid(fake: FakeDiscord, run: BotRun, user: User, prompt: str) -> tuple[Job, Message]:
    interaction = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    reply = await ephemeral_reply(fake, interaction)
    assert reply.startswith("Queued 1 job: #"), reply
    job = await eventually(
        lambda: _delivered(run, int(reply.split("#")[1].rstrip("."))), within=300
    )
    return job, await _message(fake, job)


async def _message(fake: FakeDiscord, job: Job) -> Message:
    return await fake.wait_for_message(
        lambda m: m.id == job.message_id and bool(m.attachments) and len(m.buttons) >= 9,
        timeout=60,
    )


async def _hashes(run: BotRun, job: Job) -> list[str]:
    assert run.storage is not None
    return [r.sha256 for r in sorted(await run.storage.queue.images(job.id), key=lambda r: r.index)]


async def test_an_sref_grid_paints_through_the_adapter_and_its_reroll_keeps_it(
    fake_discord: FakeDiscord, service: tuple[BotRun, Internet], alice: User
) -> None:
    run, internet = service
    assert run.storage is not None
    plain, _ = await _grid(fake_discord, run, alice, "a lighthouse --seed 5")
    styled, message = await _grid(
        fake_discord, run, alice, f"a lighthouse --seed 5 --sref <{STYLE}> --sw 400"
    )
    # The job row carries the reference: its URL and weight in the request, its blob beside.
    assert (styled.request.style_refs, styled.request.style_weight) == ((STYLE,), 400)
    assert styled.style_images == (hashlib.sha256(picture("style.png")).hexdigest(),)
    assert internet.seen == ["/style.png"]
    # The worker painted with it: the adapter at 0.6 x 400 / 100 in the style layers...
    assert styled.rendered == {"profile": "default", "reference": {"role": "style", "scale": 2.4}}
    assert plain.rendered == {"profile": "default"}
    # ...so the same seeds give other images.
    plain_images, styled_images = await _hashes(run, plain), await _hashes(run, styled)
    assert len(styled_images) == 5 and not set(plain_images) & set(styled_images)
    # What the user sees: the prompt as honoured, no "Not as written" line.
    assert message.content == (
        f"**a lighthouse --seed 5 --sref {STYLE} --sw 400** - <@{alice.id}> (fast)"
    )

    click = await fake_discord.click(message, f"imagine:reroll:{styled.id}:0", user=alice)
    await click.wait_acked()

    async def rerolled() -> Job | None:
        assert run.storage is not None
        done = await run.storage.queue.user_jobs(alice.id, [JobStatus.SUCCEEDED])
        found = [job for job in done if job.kind is JobKind.REROLL]
        return await _delivered(run, found[0].id) if found else None

    again = await eventually(rerolled, within=300)
    assert (again.request.style_refs, again.request.style_weight) == ((STYLE,), 400)
    assert again.style_images == styled.style_images and again.seed != styled.seed
    assert again.rendered == styled.rendered
    assert internet.seen == ["/style.png"]  # painted from the stored blob
    assert (await _message(fake_discord, again)).content == (
        f"**a lighthouse --seed {again.seed} --sref {STYLE} --sw 400** - <@{alice.id}> (fast)"
    )
