"""The Discord bot: prompt parsing, commands, buttons, progress and delivery."""
