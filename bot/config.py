"""The settings slice of the bot: Discord endpoints and token, admins, buttons, parser, storage."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from bot.prompt import ParserOptions
from storage.config import StorageSettings


@dataclass(frozen=True)
class BotSettings:
    """What the bot process needs; the process settings build it (``Settings.bot()``)."""

    discord_token: SecretStr | None = field(repr=False)
    discord_api_base: str
    discord_gateway_url: str
    # Slash commands sync to these guilds at once (global sync otherwise).
    guild_ids: list[int]
    admin_user_ids: list[int]
    admin_role_ids: list[int]
    allow_foreign_clicks: bool
    # A user may post one single image (U buttons) this often.
    u_cooldown_seconds: float
    upload_limit_bytes: int
    allow_relax: bool
    metrics_port: int | None
    parser: ParserOptions
    storage: StorageSettings
