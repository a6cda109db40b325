"""Running the real bot in-process against the fake Discord, and a scripted stand-in worker.

``BotRun`` starts and stops one bot instance (a restart is a second ``BotRun`` on the same
database). ``ScriptedWorker`` plays the worker's side of the storage contract step by step
(claim, progress, finish or fail) so tests decide exactly when each state change happens; the
end-to-end tests with the tiny SDXL use the real worker loop instead.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from PIL import Image

from bot.client import ImagineBot, configure_endpoints
from bot.safety import Resolver
from bot.services import Services
from imagine.settings import Settings
from storage.bundle import Storage, open_storage
from storage.contract import Job, StoredImage
from storage.metrics import Metrics
from tests.fakediscord import FakeDiscord, Interaction, Message

START_TIMEOUT = 10.0
T = TypeVar("T")
REPLY_TIMEOUT = 5.0


@dataclass
class BotRun:
    """One bot process's worth of state: storage, services, the client and its task."""

    settings: Settings
    metrics: Metrics | None = None
    storage: Storage | None = None
    services: Services | None = None
    bot: ImagineBot | None = None
    task: asyncio.Task[None] | None = None
    # Where image prompts are fetched from (default: the bot's own session and resolver).
    fetch_session: Callable[[], aiohttp.ClientSession] | None = None
    resolver: Resolver | None = None

    async def start(self, fake: FakeDiscord) -> ImagineBot:
        """Open storage, log in, connect and wait until commands are synced and READY."""
        self.storage = await open_storage(self.settings.storage())
        self.services = Services(
            settings=self.settings.bot(),
            db=self.storage.db,
            queue=self.storage.queue,
            quotas=self.storage.quotas,
            users=self.storage.users,
            images=self.storage.images,
            metrics=self.metrics,
        )
        configure_endpoints(self.settings.discord_api_base, self.settings.discord_gateway_url)
        fetching: dict[str, Any] = {}
        if self.fetch_session is not None:
            fetching["fetch_session"] = self.fetch_session
        if self.resolver is not None:
            fetching["resolver"] = self.resolver
        self.bot = ImagineBot(self.services, **fetching)
        token = self.settings.discord_token
        assert token is not None
        self.task = asyncio.create_task(self.bot.start(token.get_secret_value()))
        # Synced commands plus a live gateway session is all a user needs; discord.py's READY
        # comes a guild-streaming timeout later and is not waited for.
        synced = asyncio.create_task(self.bot.synced.wait())
        done, _ = await asyncio.wait(
            {synced, self.task}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if self.task in done:
            synced.cancel()
            self.task.result()  # raises what stopped the bot
        assert synced in done, "the bot did not sync its commands"
        await fake.wait_until_connected(START_TIMEOUT)
        return self.bot

    async def stop(self) -> None:
        """Disconnect and close storage (like a process exiting)."""
        if self.bot is not None:
            await self.bot.close()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        if self.storage is not None:
            await self.storage.close()


def png(color: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    """A solid-colour PNG."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


@dataclass
class ScriptedWorker:
    """The worker side of the queue, driven one call at a time by a test."""

    storage: Storage
    worker_id: str = "scripted-worker"
    colors: list[tuple[int, int, int]] = field(
        default_factory=lambda: [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]
    )

    async def claim(self) -> Job:
        """Claim one job, retrying like a worker does when a claim comes back empty.

        On PostgreSQL a claim skips rows other transactions hold (``SKIP LOCKED``), so it can
        come back empty while the bot is still storing the job's message id.
        """

        async def attempt() -> Job | None:
            claimed = await self.storage.queue.claim(self.worker_id, limit=1)
            return claimed[0] if claimed else None

        return await eventually(attempt)

    async def progress(self, job: Job, percent: int, preview: bytes | None = None) -> Job:
        """Report progress (and maybe a preview)."""
        return await self.storage.queue.report_progress(job.id, self.worker_id, percent, preview)

    async def finish(self, job: Job, count: int = 4, rendered: dict[str, Any] | None = None) -> Job:
        """Store ``count`` images plus a 2x2 grid and finish the job (with ``rendered``)."""
        stored = []
        for index in range(count):
            blob = await self.storage.images.put(png(self.colors[index % 4]))
            stored.append(
                StoredImage(index, blob.sha256, 32, 32, job.seed + index, blob.size, str(blob.path))
            )
        grid = Image.new("RGB", (64, 64))
        for index in range(min(count, 4)):
            grid.paste(
                Image.new("RGB", (32, 32), self.colors[index]),
                ((index % 2) * 32, (index // 2) * 32),
            )
        out = io.BytesIO()
        grid.save(out, format="PNG")
        blob = await self.storage.images.put(out.getvalue())
        stored.append(StoredImage(-1, blob.sha256, 64, 64, job.seed, blob.size, str(blob.path)))
        return await self.storage.queue.finish(
            job.id, self.worker_id, stored, gpu_seconds=0.5, rendered=rendered
        )

    async def fail(self, job: Job, error: str) -> Job:
        """Fail the job for good."""
        return await self.storage.queue.fail(job.id, self.worker_id, error, retry=False)


async def ephemeral_reply(fake: FakeDiscord, interaction: Interaction) -> str:
    """The text of the ephemeral answer to an interaction (response or followup)."""

    def find() -> str | None:
        response = interaction.response
        if response is not None and response.ephemeral and response.content:
            return response.content
        for message in interaction.followups:
            if message.ephemeral and not message.deleted:
                return message.content
        original = interaction.original
        if (
            original is not None
            and original.ephemeral
            and not original.loading
            and original.content
        ):
            return original.content
        return None

    return await fake.wait_for(find, timeout=REPLY_TIMEOUT, what="an ephemeral reply")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 5.0, every: float = 0.02
) -> T:
    """The first non-None result of ``probe`` (state outside the fake, such as the database)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await probe()
        if result is not None:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{probe!r} stayed None for {within} s")
        await asyncio.sleep(every)


def button_rows(message: Message) -> list[list[str | None]]:
    """The message's buttons as rows of their label (or emoji)."""
    rows = sorted({button.row for button in message.buttons})
    return [[b.label or b.emoji for b in message.buttons if b.row == row] for row in rows]
