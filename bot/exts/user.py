"""``/info``, ``/settings`` and ``/cancel``: what a user sees and changes about their own use."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserFacingError, defer_private, reply_private
from bot.render import info_content, settings_content
from bot.settings_menu import settings_view
from storage.contract import JobStatus
from storage.errors import StorageError

if TYPE_CHECKING:
    from bot.client import ImagineBot

_ACTIVE = (JobStatus.RUNNING, JobStatus.QUEUED)


class User(commands.Cog):
    """Commands about the caller's own quota, jobs and defaults."""

    def __init__(self, bot: ImagineBot) -> None:
        self.services = bot.services

    @app_commands.command(name="info", description="Your quota, running and queued jobs")
    async def info(self, interaction: discord.Interaction) -> None:
        """Quota used and left, jobs with their queue position, lifetime images."""
        await defer_private(interaction)
        queue = self.services.queue
        status = await self.services.quotas.status(interaction.user.id)
        jobs = await queue.user_jobs(interaction.user.id, _ACTIVE)
        positions = {
            job.id: await queue.queue_position(job.id)
            for job in jobs
            if job.status is JobStatus.QUEUED
        }
        waiting = await queue.waiting(job_ids=positions) if positions else {}
        await reply_private(interaction, info_content(status, jobs, positions, waiting))

    @app_commands.command(name="settings", description="Your default aspect, style and speed")
    async def settings(self, interaction: discord.Interaction) -> None:
        """Show the caller's defaults with menus that change them."""
        await defer_private(interaction)
        current = await self.services.users.get_settings(interaction.user.id)
        allow_relax = self.services.settings.allow_relax
        await reply_private(
            interaction,
            settings_content(current),
            view=settings_view(current, allow_relax=allow_relax),
        )

    @app_commands.command(name="cancel", description="Cancel your queued and running jobs")
    @app_commands.describe(job="Only this job (its number, as /info shows it)")
    async def cancel(self, interaction: discord.Interaction, job: int | None = None) -> None:
        """Cancel one job, or all of the caller's queued and running jobs; refunds their quota."""
        await defer_private(interaction)
        queue = self.services.queue
        if job is not None:
            targets = [job]
        else:
            targets = [j.id for j in await queue.user_jobs(interaction.user.id, _ACTIVE)]
            if not targets:
                raise UserFacingError("You have no queued or running jobs.")
        lines = []
        for job_id in targets:
            try:
                cancelled = await queue.request_cancel(job_id, user_id=interaction.user.id)
            except StorageError as exc:
                if job is not None:
                    raise
                # Finished between the listing and the cancel: say so, carry on with the rest.
                lines.append(f"#{job_id}: {exc}")
                continue
            if cancelled.status is JobStatus.CANCELLED:
                refund = f", {cancelled.cost} images refunded" if cancelled.cost else ""
                lines.append(f"#{job_id}: cancelled{refund}")
            else:
                lines.append(f"#{job_id}: stopping at the next step, then refunded")
        self.services.delivery_wakeup.set()
        await reply_private(interaction, "\n".join(lines))


async def setup(bot: ImagineBot) -> None:
    """Extension entry point."""
    await bot.add_cog(User(bot))
