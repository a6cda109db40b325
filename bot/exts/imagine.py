"""``/imagine prompt:<text> [image:<attachment>]``: parse, acknowledge, enqueue, post."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError, defer_private, reply_private, send_error
from bot.jobs import (
    enqueue,
    fetch_and_store_urls,
    post_job_messages,
    queued_text,
    store_attachment,
)
from bot.prompt import parse
from storage.contract import GRID_SIZE, JobKind, JobSpec

if TYPE_CHECKING:
    from bot.client import ImagineBot

QUEUEING_CONCURRENCY = 4
ACK_PRIORITY_WAIT = 0.25


class _AcksFirst:
    """Counts commands received but not acknowledged yet, so other work can let them go first."""

    def __init__(self) -> None:
        self._pending = 0
        self._none_pending = asyncio.Event()
        self._none_pending.set()

    def received(self) -> None:
        self._pending += 1
        self._none_pending.clear()

    def acknowledged(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._none_pending.set()

    async def wait(self, limit: float) -> None:
        """Until no acknowledgement is pending, or ``limit`` seconds (work must not starve)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._none_pending.wait(), limit)


class Imagine(commands.Cog):
    """The /imagine command."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.services = bot.services
        # Database work and posting after the acknowledgement run a few commands at a time, so
        # a burst of commands cannot crowd the event loop and delay other commands' acks.
        self._admission = asyncio.Semaphore(QUEUEING_CONCURRENCY)
        self._acks = _AcksFirst()

    @app_commands.command(name="imagine", description="Create four images from a prompt")
    @app_commands.describe(
        prompt="What to draw, with --parameters (e.g. a lighthouse at dusk --ar 3:2)",
        image="An image to start from (PNG, JPEG, WebP or GIF)",
    )
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        image: discord.Attachment | None = None,
    ) -> None:
        """Queue a grid for each request the prompt makes."""
        started = time.perf_counter()
        services = self.services
        self._acks.received()
        try:
            # Pure checks first: a bad prompt or a banned word is refused before anything is
            # acknowledged or stored, and neither needs the database.
            parse(prompt, options=services.parser, image_attached=image is not None)
            banned = services.banned.find(prompt)
            if banned is not None:
                raise UserFacingError(
                    f"Your prompt was refused: “{banned}” is not allowed on this server."
                )
        except Exception as exc:
            self._acks.acknowledged()
            await send_error(interaction, exc)
            return
        try:
            await defer_private(interaction)
        finally:
            self._acks.acknowledged()
        if services.metrics is not None:
            services.metrics.ack_seconds.observe(time.perf_counter() - started)
        try:
            await self._queue(interaction, prompt, image)
        except Exception as exc:
            await send_error(interaction, exc)

    async def _queue(
        self, interaction: discord.Interaction, prompt: str, image: discord.Attachment | None
    ) -> None:
        services = self.services
        # Downloads wait on the network, not the CPU: outside the admission limit.
        requests = parse(prompt, options=services.parser, image_attached=image is not None)
        urls = [url for request in requests for url in request.image_urls]
        stored = await fetch_and_store_urls(urls, services, self.bot.http_session)
        attached: tuple[str, ...] = ()
        if image is not None:
            attached = (await store_attachment(image, services),)
        # In a burst, acknowledging the commands still waiting matters more than queueing this
        # one a few milliseconds sooner.
        await self._acks.wait(ACK_PRIORITY_WAIT)
        async with self._admission:
            await self._enqueue(interaction, prompt, stored, attached)

    async def _enqueue(
        self,
        interaction: discord.Interaction,
        prompt: str,
        stored: dict[str, str],
        attached: tuple[str, ...],
    ) -> None:
        services = self.services
        defaults = await services.users.get_settings(interaction.user.id)
        requests = parse(
            prompt, options=services.parser, defaults=defaults, image_attached=bool(attached)
        )
        specs = [
            JobSpec(
                kind=JobKind.IMAGINE,
                request=request,
                cost=GRID_SIZE,
                input_images=tuple(stored[url] for url in request.image_urls) + attached,
            )
            for request in requests
        ]
        jobs = await enqueue(interaction, services, specs)
        await post_job_messages(interaction, services, jobs)
        await reply_private(interaction, queued_text(jobs))


async def setup(bot: ImagineBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Imagine(bot))
