"""Logging set-up for bot processes, with a filter that keeps secrets out of every log line.

discord.py logs request URLs at debug level, and interaction and webhook URLs carry a token in
their path; exceptions can echo headers. The filter rewrites each record's final message, so a
token never reaches a handler, whatever logger or level produced it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "[redacted]"

# Bot tokens: base64 user id, a timestamp part and an HMAC part, separated by dots.
_BOT_TOKEN = re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}\b")
# Interaction and webhook tokens live in URL paths: /webhooks/<app id>/<token>,
# /interactions/<interaction id>/<token>.
_URL_TOKEN = re.compile(r"(/(?:webhooks|interactions)/\d+/)([A-Za-z0-9_.-]+)")
_AUTH_HEADER = re.compile(
    r"((?:Authorization|authorization)['\"]?\s*[:=]\s*['\"]?Bot\s+)([^'\"\s,}]+)"
)


# Gateway payloads (logged at debug level) carry interaction tokens as a "token" field.
_TOKEN_FIELD = re.compile(r"""(['"]token['"]\s*:\s*['"])([^'"]+)""")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every token-shaped string replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _URL_TOKEN.sub(lambda m: m.group(1) + REDACTED, text)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    text = _TOKEN_FIELD.sub(lambda m: m.group(1) + REDACTED, text)
    return _BOT_TOKEN.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) with secrets redacted."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact in place; never drops a record."""
        message = record.getMessage()
        cleaned = redact(message, self._secrets)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info:
            # Format the traceback now so its text is redacted too; handlers reuse exc_text.
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self._secrets)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> RedactingFilter:
    """Configure the root logger and install the redaction filter on every root handler."""
    root = logging.getLogger()
    if not root.handlers:
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level.upper())
    redactor = RedactingFilter(secrets)
    for handler in root.handlers:
        # Handler filters see records from every logger that propagates to root; a logger
        # filter would only see records logged on that logger itself.
        handler.addFilter(redactor)
    return redactor
