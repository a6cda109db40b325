"""The bot's features as discord.py extensions (cogs), one module per command group."""
