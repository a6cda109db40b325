"""Interactions Discord delivers twice, or that expire before the bot answers: quiet, no error.

The fake answers a second callback for one interaction with 400 / 40060 ("already
acknowledged") and a callback after the ack deadline with 404 / 10062 ("unknown interaction"),
as Discord does.
"""

from __future__ import annotations

import logging

import pytest

from storage.contract import JobKind, JobStatus
from tests.bot.harness import BotRun, ScriptedWorker, ephemeral_reply, eventually
from tests.fakediscord import FakeDiscord, Interaction, User


def _callbacks(fake: FakeDiscord, interaction: Interaction) -> list[int]:
    path = f"/interactions/{interaction.id}/{interaction.token}/callback"
    return [r.status for r in fake.requests if r.path == path]


def _bot_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("bot")]


async def _logged(caplog: pytest.LogCaptureFixture, words: str) -> list[logging.LogRecord]:
    async def probe() -> list[logging.LogRecord] | None:
        found = [r for r in _bot_records(caplog) if words in r.getMessage()]
        return found or None

    return await eventually(probe)


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert not any("unexpected error" in r.getMessage() for r in caplog.records)


async def test_a_click_delivered_twice_is_answered_once_and_logged_quietly(
    fake_discord: FakeDiscord,
    bot_run: BotRun,
    worker: ScriptedWorker,
    alice: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    command = await fake_discord.invoke_command("imagine", {"prompt": "twice"}, user=alice)
    await ephemeral_reply(fake_discord, command)
    message = await fake_discord.wait_for_message(lambda m: m.content.startswith("**twice"))
    await worker.finish(await worker.claim())
    await fake_discord.wait_for(lambda: len(message.buttons) == 9, what="the grid buttons")

    click = await fake_discord.click(message, message.button("V2").custom_id or "", user=alice)
    await click.wait_acked()
    await fake_discord.dispatch("INTERACTION_CREATE", click.payload)
    await fake_discord.wait_for(lambda: _callbacks(fake_discord, click) == [200, 400])
    (line,) = await _logged(caplog, "already answered")
    assert line.levelno == logging.INFO
    assert line.getMessage() == (
        f"interaction {click.id} was already answered (delivered twice); ignored"
    )
    await fake_discord.wait_for_message(lambda m: "Variations" in m.content)
    assert click.followups == []  # the user sees no error
    _no_tracebacks(caplog)
    assert bot_run.storage is not None
    jobs = await bot_run.storage.queue.user_jobs(alice.id, list(JobStatus))
    assert [j.kind for j in jobs] == [JobKind.IMAGINE, JobKind.VARIATION]


async def test_a_command_delivered_twice_makes_one_job_and_no_error(
    fake_discord: FakeDiscord,
    bot_run: BotRun,
    alice: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    command = await fake_discord.invoke_command("imagine", {"prompt": "once only"}, user=alice)
    await command.wait_acked()
    await fake_discord.dispatch("INTERACTION_CREATE", command.payload)
    assert await ephemeral_reply(fake_discord, command) == "Queued 1 job: #1."
    await fake_discord.wait_for(lambda: len(_callbacks(fake_discord, command)) == 2)
    await _logged(caplog, "already answered")
    assert command.followups == []
    assert len(fake_discord.channel_messages()) == 1
    _no_tracebacks(caplog)


async def test_a_bad_prompt_delivered_twice_is_refused_once(
    fake_discord: FakeDiscord,
    bot_run: BotRun,
    alice: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    command = await fake_discord.invoke_command("imagine", {"prompt": "a fox --ar 9:1"}, user=alice)
    response = await command.wait_acked()
    assert "too extreme" in (response.content or "")
    await fake_discord.dispatch("INTERACTION_CREATE", command.payload)
    await fake_discord.wait_for(lambda: _callbacks(fake_discord, command) == [200, 400])
    await _logged(caplog, "already answered")
    assert command.followups == []
    _no_tracebacks(caplog)


async def test_an_expired_interaction_is_one_warning_and_nothing_else(
    fake_discord: FakeDiscord,
    bot_run: BotRun,
    alice: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    fake_discord.ack_deadline = 0.0  # every answer arrives too late
    info = await fake_discord.invoke_command("info", user=alice)
    await fake_discord.wait_for(lambda: _callbacks(fake_discord, info) == [404])
    (line,) = await _logged(caplog, "expired before the bot answered")
    assert line.levelno == logging.WARNING
    assert info.response is None and info.followups == []
    assert [r.getMessage() for r in _bot_records(caplog) if r.levelno >= logging.WARNING] == [
        line.getMessage()
    ]
    _no_tracebacks(caplog)
