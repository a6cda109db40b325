"""Logging for the long-running commands: format and level from settings, secrets redacted."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from imagine.settings import Settings


def configure_logging(settings: Settings) -> None:
    """Root logging in ``log_format`` at ``log_level``; the bot token, the web secret and the
    database password never appear in a line."""
    from bot.logging import setup_logging

    secrets = []
    if settings.discord_token is not None:
        secrets.append(settings.discord_token.get_secret_value().strip())
    if settings.web_secret is not None:
        secrets.append(settings.web_secret.get_secret_value())
    try:
        password = make_url(settings.database).password
    except ArgumentError:
        password = None
    if password:
        secrets.append(str(password))
    setup_logging(settings.log_level, secrets=secrets, log_format=settings.log_format)


def route_model_library_logs() -> None:
    """Send transformers' and diffusers' log lines through the root handler (same format, same
    redaction) instead of their own handlers. Imports them: call it in worker processes only."""
    import diffusers.utils.logging
    import transformers.utils.logging

    libraries: tuple[Any, ...] = (diffusers.utils.logging, transformers.utils.logging)
    for library in libraries:
        library.disable_default_handler()
        library.enable_propagation()
