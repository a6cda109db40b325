"""``--sref``/``--cref`` through the fake Discord with a scripted worker: fetched like image
prompts where a worker has an IP-Adapter, noted and left alone where none has, kept by re-rolls
and variations; and V/🔄 clicks checked against the fleet as /imagine is."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from storage.contract import Job, JobKind, JobStatus
from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply, eventually
from tests.bot.internet import SITE, Internet, picture
from tests.fakediscord import FakeDiscord, Message, User

PLAIN: dict[str, Any] = {"models": ["default"], "loras": {}, "ip_adapter": False}
ADAPTER: dict[str, Any] = {**PLAIN, "ip_adapter": True}
INK: dict[str, Any] = {**PLAIN, "loras": {"ink-wash": {"trigger": "", "weight": 1.0}}}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def scripted(run: BotRun) -> ScriptedWorker:
    assert run.storage is not None
    return ScriptedWorker(run.storage)


async def _register(run: BotRun, capabilities: dict[str, Any]) -> None:
    assert run.storage is not None
    await run.storage.queue.register_worker("gpu-1", "host", "sdxl", capabilities)


async def _painted_grid(
    fake: FakeDiscord, worker: ScriptedWorker, user: User, prompt: str
) -> tuple[Job, Message]:
    """Queue ``prompt``, let the scripted worker finish it, and wait for the grid's buttons."""
    interaction = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    assert (await ephemeral_reply(fake, interaction)).startswith("Queued 1 job")
    message = await fake.wait_for_message(
        lambda m: m.content.startswith("**") and m.interaction is None
    )
    job = await worker.claim()
    await worker.finish(job)
    await fake.wait_for(lambda: len(message.buttons) >= 9, what="the grid's buttons")
    return job, message


async def _queued(run: BotRun, user: User, count: int) -> list[Job] | None:
    assert run.storage is not None
    jobs = await run.storage.queue.user_jobs(user.id, [JobStatus.QUEUED])
    return jobs if len(jobs) == count else None


async def test_without_an_adapter_references_are_ignored_with_a_note_and_not_fetched(
    fake_discord: FakeDiscord, run: BotRun, internet: Internet, alice: User
) -> None:
    await _register(run, PLAIN)
    prompt = f"a fox --sref {SITE}/style.png --sw 300 --seed 3"
    interaction = await fake_discord.invoke_command("imagine", {"prompt": prompt}, user=alice)
    assert await ephemeral_reply(fake_discord, interaction) == "Queued 1 job: #1."
    [job] = await eventually(lambda: _queued(run, alice, 1))
    assert (job.request.style_refs, job.request.style_weight, job.style_images) == ((), 100, ())
    assert job.request.notes == (
        f"--sref {SITE}/style.png: ignored; this server has no IP-Adapter for style references",
    )
    assert internet.seen == []
    message = await fake_discord.wait_for_message(lambda m: m.content.startswith("**a fox"))
    assert message.content == (
        f"**a fox --seed 3** - <@{alice.id}> (Waiting to start)\n"
        f"-# Not as written: --sref {SITE}/style.png (ignored; this server has no IP-Adapter "
        "for style references)"
    )


async def test_references_are_fetched_stored_and_kept_by_rerolls_and_variations(
    fake_discord: FakeDiscord,
    run: BotRun,
    scripted: ScriptedWorker,
    internet: Internet,
    alice: User,
) -> None:
    await _register(run, ADAPTER)
    prompt = f"{SITE}/a.png a fox --cref <{SITE}/face.png> --cw 40 --seed 3"
    parent, message = await _painted_grid(fake_discord, scripted, alice, prompt)
    assert internet.seen == ["/a.png", "/face.png"]
    assert parent.input_images == (sha(picture("a.png")),)
    assert parent.character_images == (sha(picture("face.png")),)
    assert parent.request.character_refs == (f"{SITE}/face.png",)
    assert parent.request.character_weight == 40 and parent.request.notes == ()
    assert run.storage is not None
    assert await run.storage.images.get(parent.character_images[0]) == picture("face.png")
    assert message.content.startswith(
        f"**{SITE}/a.png a fox --seed 3 --cref {SITE}/face.png --cw 40** - <@{alice.id}>"
    )

    reroll = await fake_discord.click(message, f"imagine:reroll:{parent.id}:0", user=alice)
    await reroll.wait_acked()
    variation = await fake_discord.click(message, f"imagine:v:{parent.id}:2", user=alice)
    await variation.wait_acked()
    # The two clicks are handled concurrently: either may get the next job id.
    by_kind = {job.kind: job for job in await eventually(lambda: _queued(run, alice, 2))}
    assert set(by_kind) == {JobKind.REROLL, JobKind.VARIATION}
    again, varied = by_kind[JobKind.REROLL], by_kind[JobKind.VARIATION]
    for child in (again, varied):
        assert child.character_images == parent.character_images
        assert child.request.character_refs == parent.request.character_refs
        assert child.request.character_weight == 40
    assert again.input_images == parent.input_images and again.seed != parent.seed
    assert internet.seen == ["/a.png", "/face.png"]  # the blobs are reused, nothing refetched

    # The adapter host is gone: a re-roll now paints without the reference, as /imagine would.
    await _register(run, PLAIN)
    later = await fake_discord.click(message, f"imagine:reroll:{parent.id}:0", user=alice)
    await later.wait_acked()
    *_, plain = await eventually(lambda: _queued(run, alice, 3))
    assert (plain.kind, plain.character_images, plain.request.character_refs) == (
        JobKind.REROLL,
        (),
        (),
    )
    assert plain.request.notes == (
        f"--cref {SITE}/face.png: ignored; this server has no IP-Adapter for character references",
    )


async def test_v_and_reroll_are_refused_like_imagine_when_no_worker_serves_the_parents_needs(
    fake_discord: FakeDiscord, run: BotRun, scripted: ScriptedWorker, alice: User
) -> None:
    await _register(run, INK)
    parent, message = await _painted_grid(
        fake_discord, scripted, alice, "a fox --lora ink-wash --seed 3"
    )
    # The host with the style left; what a fresh /imagine of the same prompt is told:
    await _register(run, PLAIN)
    fresh = await fake_discord.invoke_command(
        "imagine", {"prompt": "a fox --lora ink-wash --seed 3"}, user=alice
    )
    refusal = await ephemeral_reply(fake_discord, fresh)
    assert refusal == (
        "`--lora ink-wash`: there is no such style here. Available styles: none (see /styles)."
    )
    for custom_id in (f"imagine:reroll:{parent.id}:0", f"imagine:v:{parent.id}:1"):
        click = await fake_discord.click(message, custom_id, user=alice)
        assert await ephemeral_reply(fake_discord, click) == refusal
    assert run.storage is not None
    assert await run.storage.queue.user_jobs(alice.id, [JobStatus.QUEUED]) == []
    assert (await run.storage.quotas.status(alice.id)).used == 4  # only the first grid
