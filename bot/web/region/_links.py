"""The editor's signed links: what they are bound to, and the numbers drawn from them."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import timedelta

from bot.web.server import WebServer
from bot.web.signing import LinkRefused

PURPOSE = "region-edit"
_SUBJECT = re.compile(r"([1-9][0-9]{0,18}):([0-9]):([1-9][0-9]{0,18}):([0-9]{1,19})")
# Discord ids stay below 2**62 until about 2049, so keys drawn above it never meet one.
_KEY_BASE = 1 << 62
_KEY_BITS = 60


@dataclass(frozen=True)
class EditorTarget:
    """The image a link edits and the channel its job is posted in."""

    job_id: int
    index: int
    channel_id: int
    guild_id: int | None

    @property
    def subject(self) -> str:
        """What the link's signature binds (besides the user and the purpose)."""
        return f"{self.job_id}:{self.index}:{self.channel_id}:{self.guild_id or 0}"

    @property
    def path(self) -> str:
        """The editor page for this image."""
        return f"/edit/region/{self.job_id}/{self.index}"

    @classmethod
    def parse(cls, subject: str) -> EditorTarget:
        """The target a signed subject names; ``LinkRefused`` when it names none."""
        match = _SUBJECT.fullmatch(subject)
        if match is None:
            raise LinkRefused("This link was made for something else.")
        guild = int(match[4])
        return cls(int(match[1]), int(match[2]), int(match[3]), guild or None)


def editor_link(server: WebServer, user_id: int, target: EditorTarget, ttl: timedelta) -> str:
    """A one-time link for ``user_id`` to edit ``target``, valid for ``ttl``."""
    token = server.signer.sign(user_id=user_id, purpose=PURPOSE, ttl=ttl, subject=target.subject)
    return server.url(target.path, t=token)


def job_key(nonce: str) -> int:
    """The idempotency key of the job a link queues: the same link never queues twice."""
    digest = hashlib.sha256(f"{PURPOSE}:{nonce}".encode()).digest()
    return _KEY_BASE + (int.from_bytes(digest[:8], "big") >> (64 - _KEY_BITS))


def csrf_token(secret: bytes, nonce: str) -> str:
    """The form token of a link's page (its cookie carries the same value)."""
    return hmac.new(secret, f"csrf:{PURPOSE}:{nonce}".encode(), hashlib.sha256).hexdigest()
