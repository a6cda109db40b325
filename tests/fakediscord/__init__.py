"""A protocol-level fake Discord (REST + gateway) for end-to-end tests with the real discord.py."""

from ._options import CommandInputError
from .models import (
    ADMINISTRATOR,
    EPHEMERAL,
    LOADING,
    MANAGE_GUILD,
    Attachment,
    Button,
    Channel,
    Command,
    Interaction,
    Message,
    Pings,
    Request,
    Response,
    Revision,
    Role,
    SelectMenu,
    User,
)
from .server import FakeDiscord, FakeDiscordTimeout

__all__ = [
    "ADMINISTRATOR",
    "EPHEMERAL",
    "LOADING",
    "MANAGE_GUILD",
    "Attachment",
    "Button",
    "Channel",
    "Command",
    "CommandInputError",
    "FakeDiscord",
    "FakeDiscordTimeout",
    "Interaction",
    "Message",
    "Pings",
    "Request",
    "Response",
    "Revision",
    "Role",
    "SelectMenu",
    "User",
]
