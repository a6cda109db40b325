"""Tokens never reach a log handler."""

from __future__ import annotations

import io
import logging

from bot.logging import REDACTED, RedactingFilter, redact

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
