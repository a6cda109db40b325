"""Logging set-up for bot and worker processes: text or JSON lines, secrets always redacted.

discord.py logs request URLs at debug level, and interaction and webhook URLs carry a token in
their path; exceptions can echo headers. The filter rewrites each record's final message, so a
token never reaches a handler, whatever logger or level produced it, in either format. With
``log_format = "json"`` each line is one JSON object with the ids bound for the work at hand
(``job_id``, ``user_id``, ``worker_id``; see ``storage.logcontext``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from storage.logcontext import FIELDS, ContextFilter

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
            # Format the traceback now so its text is redacted too: formatters print exc_text
            # when it is set and never format exc_info again (it stays for code that inspects
            # the exception, such as test log capture).
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self._secrets)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=str)


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter for ``log_format`` (``text`` or ``json``)."""
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log_format must be 'text' or 'json', got {log_format!r}")


def setup_logging(
    level: str = "INFO", secrets: Iterable[str] = (), log_format: str = "text"
) -> RedactingFilter:
    """Configure the root logger: one stream handler in ``log_format``, ids and redaction on
    every root handler."""
    root = logging.getLogger()
    if not root.handlers:
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(formatter_for(log_format))
        root.addHandler(handler)
    root.setLevel(level.upper())
    redactor = RedactingFilter(secrets)
    context = ContextFilter()
    for handler in root.handlers:
        # Handler filters see records from every logger that propagates to root; a logger
        # filter would only see records logged on that logger itself. Ids first, then
        # redaction, so both formats see the cleaned record.
        handler.addFilter(context)
        handler.addFilter(redactor)
    return redactor
