"""The bot's web server: one aiohttp application for health, the dashboard and editors."""
