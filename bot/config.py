"""The settings slice of the bot: Discord endpoints and token, admins, buttons, parser, storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
    # Manage Server makes an admin only in these guilds (default: guild_ids).
    admin_guild_ids: list[int]
    # When set, the only guilds the bot works in; it leaves the others.
    allowed_guild_ids: list[int]
    max_image_prompts: int
    allow_foreign_clicks: bool
    # A user may post one image publicly (U buttons, /show) this often.
    u_cooldown_seconds: float
    upload_limit_bytes: int
    allow_relax: bool
    metrics_port: int | None
    # The web server (dashboard, health): off unless web_port is set; links use public_url.
    web_port: int | None
    web_host: str
    public_url: str | None
    web_secret: SecretStr | None = field(repr=False)
    # Stored images of jobs older than this are purged hourly (kept when None).
    image_retention_days: float | None
    # Where a generated web secret is kept.
    data_dir: Path
    region_link_minutes: float

    @property
    def region_editor(self) -> bool:
        """Whether Vary (Region) is offered: the web server runs at a public address."""
        return self.web_port is not None and self.public_url is not None

    parser: ParserOptions
    storage: StorageSettings
