"""``/show job:<id>`` re-posts a job's result with working buttons; ``/history`` lists yours.

A re-post is a public post like a U button's: banned users may not make one, and it counts
against the same per-user cooldown.
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import escape_markdown

from bot.delivery import result_index
from bot.errors import UserFacingError, defer_private, reply_private
from bot.jobs import channel_of
from bot.render import job_content, message_link
from bot.singles import check_poster, take_post_turn
from bot.uploads import fit_upload
from bot.views import job_view
from storage.contract import Job, JobStatus
from storage.history import JobHistory

if TYPE_CHECKING:
    from bot.client import ImagineBot

HISTORY_LENGTH = 10
_PROMPT_CHARS = 60


def history_line(job: Job) -> str:
    """One /history line: id (linked to its message), status, prompt, age."""
    prompt = escape_markdown(job.request.prompt)
    if len(prompt) > _PROMPT_CHARS:
        prompt = prompt[: _PROMPT_CHARS - 1] + "…"
    link = message_link(job)
    label = f"[#{job.id}](<{link}>)" if link else f"#{job.id}"
    when = f" <t:{int(job.created_at.timestamp())}:R>" if job.created_at else ""
    purged = ", images removed" if job.images_purged_at else ""
    return f"{label} {job.kind} {job.status}{purged}: {prompt}{when}"


class History(commands.Cog):
    """A user's past jobs."""

    def __init__(self, bot: ImagineBot) -> None:
        self.services = bot.services
        self.history = JobHistory(bot.services.db)

    @app_commands.command(name="show", description="Post a job's result again, with its buttons")
    @app_commands.describe(job="The job's number (from /history or /info)")
    async def show(
        self, interaction: discord.Interaction, job: app_commands.Range[int, 1, 2**53]
    ) -> None:
        """Re-post a finished job's image with the buttons it had."""
        await defer_private(interaction)
        services = self.services
        await check_poster(services, interaction.user.id)
        found = await services.queue.get(job)
        if found.user_id != interaction.user.id and not services.settings.allow_foreign_clicks:
            raise UserFacingError(f"Job #{job} belongs to another user; you can show only yours.")
        if found.status is not JobStatus.SUCCEEDED:
            raise UserFacingError(f"Job #{job} has no images to show ({found.status}).")
        if found.images_purged_at is not None:
            where = message_link(found)
            raise UserFacingError(
                f"The stored images of job #{job} were removed after the retention period"
                + (f"; its original message is still at {where}" if where else "")
                + "."
            )
        records = {r.index: r for r in await services.queue.images(found.id)}
        record = records.get(result_index(found)) or records.get(0)
        if record is None:
            raise UserFacingError(f"Job #{job} has no stored image to show.")
        take_post_turn(services.posts_gate, interaction.user.id)
        data = await services.images.get(record.sha256)
        payload, name = await asyncio.to_thread(
            fit_upload, data, services.settings.upload_limit_bytes, f"imagine_{found.id}"
        )
        kwargs: dict[str, Any] = {
            "file": discord.File(io.BytesIO(payload), filename=name),
            # A re-post pings nobody, not even the job's owner.
            "allowed_mentions": discord.AllowedMentions.none(),
        }
        view = job_view(found, region=services.settings.region_editor)
        if view is not None:
            kwargs["view"] = view
        message = await channel_of(interaction).send(job_content(found, services.parser), **kwargs)
        await reply_private(interaction, f"Posted job #{job} again: {message.jump_url}")

    @app_commands.command(name="history", description="Your recent jobs, with links")
    async def history_command(self, interaction: discord.Interaction) -> None:
        """The caller's newest jobs, privately."""
        await defer_private(interaction)
        jobs = await self.history.find(user_id=interaction.user.id, limit=HISTORY_LENGTH)
        if not jobs:
            await reply_private(interaction, "You have no jobs yet; try /imagine.")
            return
        lines = [f"Your last {len(jobs)} job{'s' if len(jobs) != 1 else ''}:"]
        lines += [history_line(job) for job in jobs]
        lines.append("Use /show with a job's number to post its result again.")
        text = "\n".join(lines)
        await reply_private(interaction, text[:2000])


async def setup(bot: ImagineBot) -> None:
    """Extension entry point."""
    await bot.add_cog(History(bot))
