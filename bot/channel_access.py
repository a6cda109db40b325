"""What the bot needs in a channel to post job messages, and what to tell a user when it lacks it.

Job messages are ordinary channel messages (results are files), so the bot needs View Channel,
Send Messages (Send Messages in Threads in a thread) and Attach Files where a command is used.
Discord tells the bot its permissions in the channel with every interaction
(``app_permissions``), so a command in a channel it cannot post in is refused before anything is
queued or charged; a post Discord refuses anyway (the permissions changed meanwhile) cancels the
jobs it could not post, with their quota refunded.
"""

from __future__ import annotations

from collections.abc import Sequence

import discord

from storage.contract import Job

# Discord's answers that mean "not in this channel": Unknown Channel, Missing Access, Missing
# Permissions (any 403).
CANNOT_POST_CODES = frozenset({10003, 50001, 50013})
_THREADS = (
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
    discord.ChannelType.news_thread,
)
_NEEDS_ALL = "View Channel, Send Messages and Attach Files"


def needed_permissions(*, thread: bool = False) -> tuple[tuple[str, str], ...]:
    """``(attribute, name)`` of each permission a job message needs in the channel."""
    send = (
        ("send_messages_in_threads", "Send Messages in Threads")
        if thread
        else (
            "send_messages",
            "Send Messages",
        )
    )
    return (("view_channel", "View Channel"), send, ("attach_files", "Attach Files"))


def missing_permissions(interaction: discord.Interaction) -> list[str]:
    """The names of the permissions the bot lacks in the interaction's channel (none in DMs)."""
    if interaction.guild_id is None:
        return []
    thread = getattr(interaction.channel, "type", None) in _THREADS
    have = interaction.app_permissions
    return [name for attr, name in needed_permissions(thread=thread) if not getattr(have, attr)]


def cannot_post(exc: discord.HTTPException) -> bool:
    """Whether Discord refused a post because of the channel (gone, hidden, no permission)."""
    return exc.status == 403 or exc.code in CANNOT_POST_CODES


def _names(missing: Sequence[str]) -> str:
    if len(missing) == 1:
        return f"the {missing[0]} permission"
    return f"the {', '.join(missing[:-1])} and {missing[-1]} permissions"


def refusal_text(missing: Sequence[str]) -> str:
    """The private answer to a command in a channel where the bot cannot post."""
    return (
        f"I can't post results in this channel: I'm missing {_names(missing)} here. Nothing was "
        f"queued or charged. Ask a server admin to give me {_NEEDS_ALL} in this channel, or use "
        "another one."
    )


def unposted_text(
    interaction: discord.Interaction | None, exc: discord.HTTPException, jobs: Sequence[Job]
) -> str:
    """The private answer when Discord refused the job messages: what is missing, and that the
    jobs were cancelled and refunded."""
    missing = missing_permissions(interaction) if interaction is not None else []
    if missing:
        why = f"I'm missing {_names(missing)} here"
    elif exc.code == 50001:
        why = "I'm missing the View Channel permission here (Discord: Missing Access)"
    elif exc.code == 10003:
        why = "Discord says the channel no longer exists"
    else:
        why = f"Discord refused my message ({exc.text or exc.status})"
    ids = [f"#{job.id}" for job in jobs]
    which = ids[0] if len(ids) == 1 else f"{', '.join(ids[:-1])} and {ids[-1]}"
    refunded = sum(job.cost for job in jobs)
    plural = len(jobs) != 1
    refund = (
        f"{'their' if plural else 'its'} {refunded} images refunded"
        if refunded
        else "nothing charged"
    )
    return (
        f"I can't post in this channel: {why}. Your job{'s' if plural else ''} {which} "
        f"{'were' if plural else 'was'} cancelled and {refund}. Ask a server admin to give me "
        f"{_NEEDS_ALL} in this channel, or use another one."
    )
