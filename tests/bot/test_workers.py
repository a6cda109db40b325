"""/admin workers, live and gone workers in /admin queue, and why a job waits in /info and
/admin queue, through the fake Discord."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from imagine.settings import Settings
from storage.tables import workers
from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply
from tests.fakediscord import FakeDiscord, User

INK_HOST = {"models": ["default"], "loras": {"ink": {"trigger": "", "weight": 1.0}}}
TURBO_HOST = {"models": ["default"], "profiles": {"turbo": {"steps": 2}}}


@pytest.fixture
async def admin_run(
    fake_discord: FakeDiscord, bot_environ: dict[str, str], bob: User
) -> AsyncIterator[BotRun]:
    """The bot with Bob as its admin."""
    run = BotRun(Settings.load({**bot_environ, "IMAGINE_ADMIN_USER_IDS": f"[{bob.id}]"}))
    await run.start(fake_discord)
    try:
        yield run
    finally:
        await run.stop()


async def _queued(fake: FakeDiscord, user: User, prompt: str) -> None:
    interaction = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    await interaction.wait_acked()
    await fake.wait_for_message(lambda m: m.content.endswith("(Waiting to start)"))


async def test_admin_workers_and_why_a_job_waits(
    fake_discord: FakeDiscord, admin_run: BotRun, alice: User, bob: User
) -> None:
    run = admin_run
    assert run.storage is not None
    queue = run.storage.queue
    await queue.register_worker("gpu-ink", "host-a", "sdxl", INK_HOST)
    await queue.register_worker("gpu-turbo", "host-b", "sdxl-turbo", TURBO_HOST)
    await queue.register_worker("gpu-old", "host-c", "sdxl", {"models": ["default"]})
    async with queue.db.write() as tx:
        await tx.conn.execute(
            update(workers)
            .where(workers.c.id == "gpu-old")
            .values(last_seen=queue.now() - queue.lease - timedelta(seconds=5))
        )
    await _queued(fake_discord, alice, "a plain harbour")
    # Each part is offered, so the bot takes it; but no one worker serves both.
    await _queued(fake_discord, alice, "an inked harbour --lora ink --turbo")
    held = await ScriptedWorker(run.storage, worker_id="gpu-turbo").claim()
    assert held.request.prompt == "a plain harbour"

    shown = await fake_discord.invoke_command("admin workers", user=bob, check_permissions=False)
    lines = (await ephemeral_reply(fake_discord, shown)).splitlines()
    assert lines[0] == "Workers: 2 live, 1 gone"
    assert lines[1].startswith("- gpu-ink on host-a (live, idle), last seen <t:")
    assert lines[2] == "  serves: sdxl; style ink, model default"
    assert lines[3].startswith(f"- gpu-turbo on host-b (live, job #{held.id}), last seen")
    assert lines[4] == "  serves: sdxl-turbo; model default, profile turbo"
    assert lines[5].startswith("- gpu-old on host-c (gone, idle), last seen <t:")

    stuck = "waiting for a worker that serves style ink and profile turbo"
    info = await fake_discord.invoke_command("info", user=alice)
    text = await ephemeral_reply(fake_discord, info)
    assert f"#{held.id + 1} an inked harbour (queued, position 1; {stuck})" in text
    admin = await fake_discord.invoke_command("admin queue", user=bob, check_permissions=False)
    text = await ephemeral_reply(fake_discord, admin)
    assert "\nWorkers: 2 live, 1 gone\n- gpu-ink on host-a (live, sdxl), last seen <t:" in text
    assert "\n- gpu-old on host-c (gone, sdxl), last seen <t:" in text
    assert f"Stuck:\n- 1 {stuck} (#{held.id + 1})" in text


async def test_a_queued_job_says_why_while_no_worker_is_live(
    fake_discord: FakeDiscord, admin_run: BotRun, alice: User, bob: User
) -> None:
    run = admin_run
    assert run.storage is not None
    queue = run.storage.queue
    await queue.register_worker("gpu-a", "host-a", "sdxl", {"models": ["default"]})
    await _queued(fake_discord, alice, "a plain harbour")
    # Its only worker stopped a lease ago: nothing will paint the job until one returns.
    async with queue.db.write() as tx:
        await tx.conn.execute(
            update(workers).values(last_seen=queue.now() - queue.lease - timedelta(seconds=5))
        )

    why = "waiting for a worker: none is running right now"
    info = await fake_discord.invoke_command("info", user=alice)
    text = await ephemeral_reply(fake_discord, info)
    assert f"#1 a plain harbour (queued, position 1; {why})" in text
    admin = await fake_discord.invoke_command("admin queue", user=bob, check_permissions=False)
    lines = (await ephemeral_reply(fake_discord, admin)).splitlines()
    assert lines[:2] == ["Queue: 1 waiting, 0 running", "Workers: 0 live, 1 gone"]
    assert lines[2].startswith("- gpu-a on host-a (gone, sdxl), last seen <t:")
    assert lines[3:] == ["Stuck:", f"- 1 {why} (#1)"]
