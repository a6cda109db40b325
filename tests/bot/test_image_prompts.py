"""Image prompts through the fake Discord: how many, when they are fetched, what is kept.

"The internet" is ``tests.bot.internet``: an aiohttp server on a Unix socket that counts the
requests reaching it, behind the unchanged SSRF guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Sequence

import pytest
from PIL import Image

from storage.contract import JobStatus
from storage.errors import BlobNotFound
from tests.bot.harness import BotRun, ephemeral_reply
from tests.bot.internet import SITE, Internet, picture
from tests.fakediscord import FakeDiscord, User


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _reply(
    fake: FakeDiscord,
    user: User,
    prompt: str,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> str:
    command = await fake.invoke_command(
        "imagine", {"prompt": prompt}, user=user, attachments=attachments
    )
    return await ephemeral_reply(fake, command)


async def test_a_banned_users_image_prompt_fetches_nothing(
    fake_discord: FakeDiscord, run: BotRun, internet: Internet, alice: User, bob: User, boss: User
) -> None:
    assert run.storage is not None
    ban = await fake_discord.invoke_command("admin ban", {"user": alice}, user=boss)
    await ephemeral_reply(fake_discord, ban)
    prompt = f"{SITE}/a.png {SITE}/b.png a fox"
    assert (
        await _reply(fake_discord, alice, prompt) == "You are banned from generating images here."
    )
    assert internet.seen == []  # not one request left the bot
    assert await run.storage.queue.user_jobs(alice.id, list(JobStatus)) == []

    # The same prompt from someone allowed is fetched, each URL once, and given to the job.
    assert await _reply(fake_discord, bob, prompt) == "Queued 1 job: #1."
    assert internet.seen == ["/a.png", "/b.png"]
    job = await run.storage.queue.get(1)
    assert job.input_images == (sha(picture("a.png")), sha(picture("b.png")))
    assert await run.storage.images.get(job.input_images[1]) == picture("b.png")


async def test_a_full_quota_or_queue_fetches_nothing(
    fake_discord: FakeDiscord, run: BotRun, internet: Internet, alice: User, bob: User, boss: User
) -> None:
    quota = await fake_discord.invoke_command(
        "admin quota set", {"user": alice, "images": 4, "period": "day"}, user=boss
    )
    await ephemeral_reply(fake_discord, quota)
    caps = await fake_discord.invoke_command(
        "admin limits", {"user": bob, "max_queued": 1}, user=boss
    )
    await ephemeral_reply(fake_discord, caps)
    assert await _reply(fake_discord, alice, "a first fox") == "Queued 1 job: #1."
    assert await _reply(fake_discord, bob, "a first owl") == "Queued 1 job: #2."

    refused = await _reply(fake_discord, alice, f"{SITE}/a.png a second fox")
    assert refused.startswith("Not enough image quota: you have used 4 of 4 images")
    refused = await _reply(fake_discord, bob, f"{SITE}/a.png a second owl")
    assert refused.startswith("You have 1 jobs waiting and this adds 1; at most 1 may wait")
    attached = await _reply(fake_discord, bob, "an owl", attachments=[("owl.png", picture("o"))])
    assert attached.startswith("You have 1 jobs waiting")
    assert internet.seen == []


async def test_too_many_image_prompts_are_refused_at_once_and_inputs_are_deduplicated(
    fake_discord: FakeDiscord, run: BotRun, internet: Internet, alice: User
) -> None:
    five = " ".join(f"{SITE}/{n}.png" for n in "abcde")
    command = await fake_discord.invoke_command("imagine", {"prompt": f"{five} a fox"}, user=alice)
    response = await command.wait_acked()
    assert (response.type, response.ephemeral, response.content) == (
        4,
        True,
        "Your command has 5 image prompts; at most 4 are allowed per command (an attached image "
        "counts as one).",
    )
    four = " ".join(f"{SITE}/{n}.png" for n in "abcd")
    refused = await _reply(
        fake_discord, alice, f"{four} a fox", attachments=[("x.png", picture("x"))]
    )
    assert refused.startswith("Your command has 5 image prompts; at most 4")
    assert internet.seen == []

    # Repeated URLs count once; images with the same bytes become one input.
    urls = f"{SITE}/a.png {SITE}/b.png {SITE}/a.png {SITE}/same-as-a.png"
    queued = await _reply(
        fake_discord, alice, f"{urls} a fox", attachments=[("b.png", picture("b.png"))]
    )
    assert queued == "Queued 1 job: #1."
    assert internet.seen == ["/a.png", "/b.png", "/same-as-a.png"]
    assert run.storage is not None
    job = await run.storage.queue.get(1)
    assert job.input_images == (sha(picture("a.png")), sha(picture("b.png")))


async def test_a_command_refused_after_its_downloads_keeps_no_blobs(
    fake_discord: FakeDiscord, run: BotRun, internet: Internet, alice: User, bob: User, boss: User
) -> None:
    assert run.storage is not None
    images = run.storage.images
    assert await _reply(fake_discord, bob, f"{SITE}/a.png bob's fox") == "Queued 1 job: #1."
    quota = await fake_discord.invoke_command(
        "admin quota set", {"user": alice, "images": 8, "period": "day"}, user=boss
    )
    await ephemeral_reply(fake_discord, quota)

    slow = asyncio.ensure_future(
        _reply(fake_discord, alice, f"{SITE}/slow.png {SITE}/a.png alice's cat")
    )
    # The admission check passed (nothing used yet) and the first download is under way...
    await asyncio.wait_for(internet.hanging.wait(), 10)
    # ... when another command of hers takes the whole quota.
    assert await _reply(fake_discord, alice, "a {red, blue} bird") == "Queued 2 jobs: #2, #3."
    internet.release.set()
    refusal = await asyncio.wait_for(slow, 10)
    assert refusal.startswith("Not enough image quota: you have used 8 of 8 images")
    assert internet.seen == ["/a.png", "/slow.png", "/a.png"]

    with pytest.raises(BlobNotFound):
        await images.get(sha(picture("slow.png")))  # stored for the refused command: deleted
    assert await images.get(sha(picture("a.png"))) == picture("a.png")  # bob's job uses it
    assert len(await run.storage.queue.user_jobs(alice.id, list(JobStatus))) == 2


async def test_a_phone_photo_attachment_is_queued(
    fake_discord: FakeDiscord, run: BotRun, alice: User
) -> None:
    photo = io.BytesIO()
    first = Image.new("RGB", (64, 48), (10, 120, 200))
    first.save(photo, "MPO", save_all=True, append_images=[Image.new("RGB", (32, 24))])
    queued = await _reply(
        fake_discord, alice, "like this photo", attachments=[("IMG_0001.jpg", photo.getvalue())]
    )
    assert queued == "Queued 1 job: #1."
    assert run.storage is not None
    (stored,) = (await run.storage.queue.get(1)).input_images
    path = await asyncio.to_thread(run.storage.images.path, stored)
    assert path is not None and path.suffix == ".jpg"
