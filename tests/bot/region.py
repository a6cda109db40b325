"""Helpers for the Vary (Region) tests: a bot with its web editor on, and a link from a click."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from imagine.settings import Settings
from storage.contract import Job, JobStatus
from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply
from tests.fakediscord import FakeDiscord, Interaction, Message, User
from tests.plugins.web import free_port

SIZE = (32, 32)


@pytest.fixture
def editor_settings(bot_settings: Settings) -> Settings:
    """The bot's settings with the web server on at a known public address."""
    port = free_port()
    return bot_settings.model_copy(
        update={
            "web_port": port,
            "web_host": "127.0.0.1",
            "public_url": f"http://127.0.0.1:{port}",
            "web_secret": None,
        }
    )


@pytest.fixture
async def editor_bot(editor_settings: Settings, fake_discord: FakeDiscord) -> AsyncIterator[BotRun]:
    """The bot with its region editor, connected to the fake Discord."""
    run = BotRun(editor_settings)
    try:
        await run.start(fake_discord)
        yield run
    finally:
        await run.stop()


@dataclass
class Single:
    """A finished grid, the U1 post of its first image, and that image."""

    job: Job
    message: Message
    image: bytes


async def single_image(fake: FakeDiscord, run: BotRun, user: User, prompt: str) -> Single:
    """Imagine ``prompt``, finish it with the scripted worker and press U1."""
    assert run.storage is not None
    worker = ScriptedWorker(run.storage)
    command = await fake.invoke_command("imagine", {"prompt": prompt}, user=user)
    await command.wait_acked()
    grid = await fake.wait_for_message(
        lambda m: m.content.startswith(f"**{prompt}") and m.content.endswith("(Waiting to start)")
    )
    job = await worker.finish(await worker.claim())
    await fake.wait_for(lambda: len(grid.buttons) == 9, what="the grid buttons")
    await (await fake.click(grid, grid.button("U1").custom_id or "", user=user)).wait_acked()
    single = await fake.wait_for_message(
        lambda m: m.content.startswith(f"**{prompt}") and "Image #1" in m.content
    )
    return Single(job, single, single.attachments[0].data)


async def region_link(fake: FakeDiscord, single: Message, user: User) -> tuple[Interaction, str]:
    """Press Vary (Region) as ``user``: the interaction and the editor link it answered with."""
    click = await fake.click(single, single.button("Vary (Region)").custom_id or "", user=user)
    await ephemeral_reply(fake, click)
    reply = next(m for m in click.followups if m.ephemeral)
    (button,) = reply.buttons
    assert button.url is not None and button.label == "Open the editor"
    return click, button.url


def csrf_of(page: str) -> str:
    """The CSRF token in an editor page's form."""
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert match is not None, page
    return match[1]


def mask_png(box: tuple[int, int, int, int], size: tuple[int, int] = SIZE) -> bytes:
    """A black PNG with a white rectangle: the part to repaint."""
    image = Image.new("L", size, 0)
    image.paste(255, box)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def painted(data: bytes) -> np.ndarray:
    """Which pixels of a stored mask are painted."""
    with Image.open(io.BytesIO(data)) as image:
        mask: np.ndarray = np.asarray(image.convert("L")) == 255
    return mask


async def user_jobs(run: BotRun, user: User) -> list[Job]:
    """Every job of ``user``, oldest first."""
    assert run.storage is not None
    return await run.storage.queue.user_jobs(user.id, list(JobStatus))
