"""Signed links: HMAC-signed, bound to a user and a purpose (and an object), expiring, one-time.

A token is ``<payload>.<signature>``, both base64url: the payload is JSON with the user id, the
purpose (``admin-login``, ``region-edit``, ...), the object it is about (a job id, or empty),
a random nonce and the expiry; the signature is HMAC-SHA256 over the payload with the server
secret. ``verify`` checks signature, purpose and expiry without side effects (a page can show
what the link is for); ``redeem`` also records the nonce in the database, so each link works
once, whichever process serves it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.weblinks import WebLogins

SECRET_FILE = "web_secret"
MIN_SECRET_CHARS = 16


class LinkRefused(Exception):
    """A link that cannot be used; ``str()`` says why, in words fit for the person holding it."""


@dataclass(frozen=True)
class SignedLink:
    """What a valid token says."""

    user_id: int
    purpose: str
    subject: str
    nonce: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _now() -> datetime:
    return datetime.now(UTC)


class LinkSigner:
    """Makes and checks signed tokens with one server secret."""

    def __init__(self, secret: bytes, *, clock: Callable[[], datetime] = _now) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the web secret must have at least {MIN_SECRET_CHARS} characters")
        self._secret = secret
        self._clock = clock

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def sign(self, *, user_id: int, purpose: str, ttl: timedelta, subject: str = "") -> str:
        """A token for ``user_id`` to do ``purpose`` on ``subject`` until ``ttl`` from now."""
        expires = int((self._clock() + ttl).timestamp())
        body = {"u": user_id, "p": purpose, "s": subject, "n": secrets.token_hex(16), "e": expires}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, *, purpose: str, subject: str | None = None) -> SignedLink:
        """The link a token describes; ``LinkRefused`` for a bad signature, purpose or expiry."""
        payload, dot, signature = (token or "").partition(".")
        if not dot or not hmac.compare_digest(signature, self._mac(payload)):
            raise LinkRefused("This link is not valid (it was changed or made for another server).")
        try:
            body = json.loads(_unb64(payload))
            link = SignedLink(
                user_id=int(body["u"]),
                purpose=str(body["p"]),
                subject=str(body["s"]),
                nonce=str(body["n"]),
                expires_at=datetime.fromtimestamp(int(body["e"]), UTC),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise LinkRefused("This link is not valid (its contents cannot be read).") from exc
        if link.purpose != purpose or (subject is not None and link.subject != subject):
            raise LinkRefused("This link was made for something else.")
        if link.expires_at <= self._clock():
            raise LinkRefused("This link has expired; ask for a new one.")
        return link

    async def redeem(
        self, token: str, logins: WebLogins, *, purpose: str, subject: str | None = None
    ) -> SignedLink:
        """``verify``, then use the link up: a second redemption is refused."""
        link = self.verify(token, purpose=purpose, subject=subject)
        fresh = await logins.use_nonce(
            link.nonce, purpose=link.purpose, user_id=link.user_id, expires_at=link.expires_at
        )
        if not fresh:
            raise LinkRefused("This link was already used; ask for a new one.")
        return link


def load_secret(configured: str | None, data_dir: Path) -> bytes:
    """The server secret: the configured one, else ``DATA_DIR/web_secret`` (made on first use).

    Blocking (file I/O). The file (mode 0600) appears whole or not at all, and only once, so the
    bot and an ``imagine admin-link`` started at the same moment end up with the same secret.
    """
    if configured:
        if len(configured) < MIN_SECRET_CHARS:
            raise ValueError(
                f"web_secret must have at least {MIN_SECRET_CHARS} characters, "
                f"got {len(configured)}"
            )
        return configured.encode()
    path = Path(data_dir) / SECRET_FILE
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a temporary file, then linked into place: the link fails if another
    # process got there first, and nobody ever reads a half-written secret.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-secret-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    value = path.read_text().strip()
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(f"{path} holds a web secret shorter than {MIN_SECRET_CHARS} characters")
    return value.encode()
