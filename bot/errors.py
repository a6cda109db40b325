"""The bot's one error boundary: any exception becomes one clear ephemeral message.

Expected refusals (bad prompts, quota, bans, unsafe image URLs) carry a user-facing sentence in
``str(exc)`` and are shown as they are. Anything else is logged with a short reference and the
user sees a plain apology with that reference, never a traceback.

Discord may deliver one interaction twice (a gateway resume, a second bot process); the copy
that answers second is told "already acknowledged", and an answer after the 3-second deadline
is told "unknown interaction". Both are expected: one quiet log line, nothing for the user.
"""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from bot.prompt import PromptError
from bot.safety import FetchRefused
from bot.services import services_of
from storage.errors import StorageError
from storage.logcontext import bind

log = logging.getLogger(__name__)

THINKING = "imagine.thinking"
ALREADY_ACKNOWLEDGED = 40060
UNKNOWN_INTERACTION = 10062


class UserFacingError(Exception):
    """A refusal whose message is meant for the user as it is."""


_EXPECTED: tuple[type[BaseException], ...] = (
    UserFacingError,
    PromptError,
    FetchRefused,
    StorageError,
)


def message_for(exc: BaseException) -> str:
    """The sentence shown to the user for ``exc`` (unexpected ones are logged here)."""
    if isinstance(exc, app_commands.CommandInvokeError):
        exc = exc.original
    if isinstance(exc, _EXPECTED):
        text = str(exc).strip()
        return text or type(exc).__name__
    if isinstance(exc, app_commands.CheckFailure):
        return str(exc) or "You are not allowed to use this command."
    if isinstance(exc, app_commands.TransformerError):
        return f"The value {exc.value!r} is not valid for this option."
    reference = secrets.token_hex(4)
    log.error("unexpected error (reference %s)", reference, exc_info=exc)
    if isinstance(exc, discord.HTTPException):
        return f"Discord refused a request ({exc.status}); please try again. Reference {reference}."
    return f"Something went wrong on our side; please try again. Reference {reference}."


def _unanswerable(interaction: discord.Interaction, exc: BaseException) -> bool:
    """Log and say so when ``exc`` means this interaction can no longer be answered."""
    if isinstance(exc, app_commands.CommandInvokeError):
        exc = exc.original
    if not isinstance(exc, discord.HTTPException):
        return False
    if exc.code == ALREADY_ACKNOWLEDGED:
        log.info("interaction %s was already answered (delivered twice); ignored", interaction.id)
        return True
    if exc.code == UNKNOWN_INTERACTION:
        log.warning(
            "interaction %s expired before the bot answered it (over Discord's 3 s); dropped",
            interaction.id,
        )
        return True
    return False


async def send_error(interaction: discord.Interaction, exc: BaseException) -> None:
    """Tell the user what went wrong, ephemerally, whatever state the interaction is in."""
    if _unanswerable(interaction, exc):
        return
    text = message_for(exc)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if interaction.extras.get(THINKING):
            # The private "thinking..." placeholder becomes the answer.
            interaction.extras[THINKING] = False
            await interaction.edit_original_response(content=text)
            return
        await interaction.followup.send(text, ephemeral=True)
    except Exception as report_exc:
        # The token may have expired or the bot may be shutting down: nobody is left to tell.
        if not _unanswerable(interaction, report_exc):
            log.warning("could not report an error to the user: %s", report_exc)


async def defer_private(interaction: discord.Interaction) -> None:
    """Acknowledge at once with a "thinking..." only the user sees; it becomes the answer."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    interaction.extras[THINKING] = True


async def reply_private(
    interaction: discord.Interaction, text: str, *, view: discord.ui.View | None = None
) -> None:
    """Answer an acknowledged interaction privately (fills the placeholder if there is one)."""
    if interaction.extras.get(THINKING):
        interaction.extras[THINKING] = False
        if view is None:
            await interaction.edit_original_response(content=text)
        else:
            await interaction.edit_original_response(content=text, view=view)
    elif view is None:
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.followup.send(text, view=view, ephemeral=True)


class GuildNotAllowed(app_commands.CheckFailure):
    """The command came from a guild the bot does not work in."""


class ErrorTree(app_commands.CommandTree[discord.Client]):
    """A command tree whose errors all go through ``send_error``, and that refuses commands
    from guilds outside ``allowed_guild_ids``."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Refuse, with a reason the user sees, commands from a guild the bot does not serve.

        Also tags this interaction's log lines with its user (each runs in its own task).
        """
        bind(user_id=interaction.user.id)
        refusal = services_of(interaction.client).rules.guild_refusal(interaction.guild_id)
        if refusal is not None:
            raise GuildNotAllowed(refusal)
        return True

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Report every command error to its user."""
        await send_error(interaction, error)
