"""``/imagine prompt:<text> [image:<attachment>]``: parse, acknowledge, enqueue, post."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError, defer_private, reply_private, send_error
from bot.inputs import (
    CommandImages,
    check_image_count,
    fetch_urls,
    fetched_urls,
    read_attachment,
    render_size,
)
from bot.jobs import enqueue, post_job_messages, queued_text
from bot.moderation import banned_refusal
from bot.offered import (
    check_offered,
    for_family,
    served_references,
    style_choices,
    with_style,
)
from bot.prompt import parse
from storage.capabilities import Offered, read_offered
from storage.contract import GRID_SIZE, GenerationRequest, JobKind, JobSpec

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
        style="A LoRA style to paint with, at its default weight (see /styles)",
    )
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        image: discord.Attachment | None = None,
        style: str | None = None,
    ) -> None:
        """Queue a grid for each request the prompt makes."""
        started = time.perf_counter()
        services = self.services
        self._acks.received()
        try:
            # Pure checks first: a bad prompt, a banned word or too many image prompts is
            # refused before anything is acknowledged or stored, and none needs the database.
            requests = parse(prompt, options=services.parser, image_attached=image is not None)
            banned = services.banned.find_in_command(prompt, requests)
            if banned is not None:
                raise UserFacingError(banned_refusal(banned))
            check_image_count(
                requests, attached=image is not None, limit=services.settings.max_image_prompts
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
            await self._queue(interaction, prompt, requests, image, style)
        except Exception as exc:
            await send_error(interaction, exc)

    @imagine.autocomplete("style")
    async def _style_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        offered = await read_offered(self.services.db, self.services.queue.now())
        return [
            app_commands.Choice(name=label, value=value)
            for label, value in style_choices(offered, current)
        ]

    async def _queue(
        self,
        interaction: discord.Interaction,
        prompt: str,
        requests: Sequence[GenerationRequest],
        image: discord.Attachment | None,
        style: str | None,
    ) -> None:
        services = self.services
        # Decided once per command: references no live worker can paint are dropped with a
        # note, so they are neither downloaded nor waited for.
        references = True
        offered: Offered | None = None
        if any(request.style_refs or request.character_refs for request in requests):
            offered = await read_offered(services.db, services.queue.now())
            references = offered.ip_adapter
            requests = served_references(requests, ip_adapter=references)
        urls = fetched_urls(requests)
        images = CommandImages()
        if urls or image is not None:
            # A banned user, a full queue or an empty quota downloads nothing.
            async with self._admission:
                await services.queue.check_admission(
                    interaction.user.id,
                    await self._specs(
                        interaction,
                        prompt,
                        None,
                        image_attached=image is not None,
                        style=style,
                        references=references,
                        offered=offered,
                    ),
                    interaction_id=interaction.id,
                )
            # Downloads wait on the network, not the CPU: outside the admission limit.
            fit = render_size(requests)
            images.fetched = await fetch_urls(
                urls, self.bot.http_session, self.bot.image_resolver, fit=fit
            )
            if image is not None:
                images.attachment = await read_attachment(image, fit=fit)
        # In a burst, acknowledging the commands still waiting matters more than queueing this
        # one a few milliseconds sooner.
        await self._acks.wait(ACK_PRIORITY_WAIT)
        async with self._admission:
            await self._enqueue(interaction, prompt, images, style, references)

    async def _specs(
        self,
        interaction: discord.Interaction,
        prompt: str,
        images: CommandImages | None,
        *,
        image_attached: bool,
        style: str | None,
        references: bool,
        offered: Offered | None = None,
    ) -> list[JobSpec]:
        """The command's jobs; with the inputs of ``images`` once they are stored. ``offered``:
        what live workers serve, when the caller has just read it."""
        services = self.services
        defaults = await services.users.get_settings(interaction.user.id)
        requests = parse(
            prompt, options=services.parser, defaults=defaults, image_attached=image_attached
        )
        # Styles, fast profiles and ControlNets exist where workers registered them.
        if offered is None:
            offered = await read_offered(services.db, services.queue.now())
        requests = for_family(with_style(requests, style, offered), offered)
        requests = served_references(requests, ip_adapter=references)
        check_offered(requests, offered)
        specs = []
        for request in requests:
            spec = JobSpec(
                kind=JobKind.IMAGINE, request=request, cost=GRID_SIZE, prompt_text=prompt
            )
            if images is not None:
                style_images, character_images = images.references_for(request)
                spec = dataclasses.replace(
                    spec,
                    input_images=images.inputs_for(request),
                    style_images=style_images,
                    character_images=character_images,
                )
            specs.append(spec)
        return specs

    async def _enqueue(
        self,
        interaction: discord.Interaction,
        prompt: str,
        images: CommandImages,
        style: str | None,
        references: bool,
    ) -> None:
        services = self.services
        try:
            await images.store(services)
            specs = await self._specs(
                interaction,
                prompt,
                images,
                image_attached=images.attachment is not None,
                style=style,
                references=references,
            )
            jobs = await enqueue(interaction, services, specs)
        except Exception:
            # Refused after all (the admission check read an older state): keep no orphans.
            await images.discard(services)
            raise
        await post_job_messages(interaction, services, jobs)
        await reply_private(interaction, queued_text(jobs))


async def setup(bot: ImagineBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Imagine(bot))
