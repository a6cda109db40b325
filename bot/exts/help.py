"""``/help``: the prompt language and the other commands, privately."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.prompt import language_help

if TYPE_CHECKING:
    from bot.client import ImagineBot

COMMANDS = (
    "**Commands:** /settings (your defaults) · /info (quota and jobs) · /cancel · "
    "/styles (LoRA styles) · /history · /show"
)


class Help(commands.Cog):
    """The /help command."""

    @app_commands.command(name="help", description="Prompt syntax, every parameter, commands")
    async def help(self, interaction: discord.Interaction) -> None:
        """Answer privately with the prompt language and the command list."""
        await interaction.response.send_message(f"{language_help()}\n{COMMANDS}", ephemeral=True)


async def setup(bot: ImagineBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Help())
