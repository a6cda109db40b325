"""Tokens never reach a log handler."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.logging import REDACTED, RedactingFilter, formatter_for, redact
from storage.logcontext import ContextFilter, bind, bound
from tests.bot.harness import BotRun, ScriptedWorker
from tests.fakediscord import FakeDiscord, User

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4OQ.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


def _capture(secrets: tuple[str, ...] = ()) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(secrets))
    logger = logging.getLogger("tests.bot.redaction")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_configured_secret_is_redacted_from_message_and_args() -> None:
    logger, stream = _capture(("s3cret-token-value",))
    logger.info("token is %s", "s3cret-token-value")
    assert "s3cret" not in stream.getvalue()
    assert REDACTED in stream.getvalue()


def test_token_shaped_strings_and_url_tokens_are_redacted() -> None:
    logger, stream = _capture()
    logger.debug(
        "PATCH https://discord.com/api/v10/webhooks/123/aW50ZXJhY3Rpb246OTg3/messages/@original"
    )
    logger.debug("POST /api/v10/interactions/555/aW50ZXJhY3Rpb246OTg3.x-y/callback")
    logger.warning("headers {'Authorization': 'Bot %s'}", TOKEN)
    out = stream.getvalue()
    assert "aW50ZXJhY3Rpb246OTg3" not in out
    assert TOKEN not in out
    assert "/webhooks/123/[redacted]/messages/@original" in out
    assert "/interactions/555/[redacted]/callback" in out


def test_token_fields_of_logged_payloads_are_redacted() -> None:
    logger, stream = _capture()
    logger.debug("Event: %s", {"op": 0, "d": {"id": "1", "token": "aW50ZXJhY3Rpb246MTIz.x_y-z"}})
    logger.debug('{"token": "aW50ZXJhY3Rpb246MTIz", "type": 2}')
    out = stream.getvalue()
    assert "aW50ZXJhY3Rpb246MTIz" not in out
    assert "'token': '[redacted]'" in out and '"token": "[redacted]"' in out


def test_tracebacks_are_redacted_too() -> None:
    logger, stream = _capture((TOKEN,))
    try:
        raise RuntimeError(f"login failed with {TOKEN}")
    except RuntimeError:
        logger.exception("boom")
    out = stream.getvalue()
    assert "RuntimeError: login failed with [redacted]" in out
    assert TOKEN not in out


def test_plain_text_is_untouched() -> None:
    assert redact("job 12 delivered to channel 34") == "job 12 delivered to channel 34"


def _json_capture(secrets: tuple[str, ...] = ()) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for("json"))
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(secrets))
    logger = logging.getLogger("tests.bot.json")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_bound_ids_and_stay_redacted() -> None:
    logger, stream = _json_capture((TOKEN,))
    logger.info("before any job")
    with bound(job_id=12, user_id=34):
        bind(worker_id="host:1:abc")
        logger.warning("job %s stuck; token %s", 12, TOKEN)
        try:
            raise RuntimeError(f"login failed with {TOKEN}")
        except RuntimeError:
            logger.exception("boom")
    logger.info("explicit", extra={"job_id": 99})
    first, stuck, boom, explicit = _lines(stream)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["message"] == "before any job" and first["level"] == "INFO"
    assert stuck["message"] == "job 12 stuck; token [redacted]"
    assert (stuck["job_id"], stuck["user_id"], stuck["worker_id"]) == (12, 34, "host:1:abc")
    assert "RuntimeError: login failed with [redacted]" in str(boom["exception"])
    assert TOKEN not in stream.getvalue()
    assert explicit["job_id"] == 99 and "user_id" not in explicit


def test_only_known_ids_can_be_bound() -> None:
    with pytest.raises(ValueError, match="log fields are job_id, user_id, worker_id"):
        bind(guild=1)


async def test_the_bot_logs_delivery_with_the_jobs_ids(
    fake_discord: FakeDiscord, bot_run: BotRun, worker: ScriptedWorker, alice: User
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for("json"))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        interaction = await fake_discord.invoke_command("imagine", {"prompt": "logged"}, user=alice)
        await interaction.wait_acked()
        message = await fake_discord.wait_for_message(lambda m: m.content.startswith("**logged"))
        message.deleted = True
        await worker.finish(await worker.claim())
        await fake_discord.wait_for(
            lambda: "message was deleted" in stream.getvalue(), what="the delivery log line"
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    line = next(entry for entry in _lines(stream) if "message was deleted" in str(entry["message"]))
    assert (line["job_id"], line["user_id"]) == (1, alice.id)
    assert line["logger"] == "bot.delivery"
