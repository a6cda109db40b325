"""``/styles``: the LoRA styles the workers serve, with trigger words and default weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import defer_private, reply_private
from bot.offered import styles_content
from storage.capabilities import read_offered

if TYPE_CHECKING:
    from bot.client import ImagineBot


class Styles(commands.Cog):
    """The /styles command."""

    def __init__(self, bot: ImagineBot) -> None:
        self.services = bot.services

    @app_commands.command(name="styles", description="LoRA styles you can paint with (--lora)")
    async def styles(self, interaction: discord.Interaction) -> None:
        """List every style a live worker serves."""
        await defer_private(interaction)
        offered = await read_offered(self.services.db, self.services.queue.now())
        await reply_private(interaction, styles_content(offered))


async def setup(bot: ImagineBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Styles(bot))
