"""Signed links: bound to user, purpose and object; expiring; tamper-proof; usable once."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from bot.web.signing import LinkRefused, LinkSigner, load_secret
from storage.db import Database
from storage.weblinks import WebLogins
from tests.plugins.database import FakeClock

SECRET = b"a test secret of enough length"


def test_a_token_says_who_what_and_until_when(clock: FakeClock) -> None:
    signer = LinkSigner(SECRET, clock=clock)
    token = signer.sign(user_id=42, purpose="region-edit", subject="17", ttl=timedelta(minutes=5))
    link = signer.verify(token, purpose="region-edit", subject="17")
    assert (link.user_id, link.purpose, link.subject) == (42, "region-edit", "17")
    assert link.expires_at == (clock.current + timedelta(minutes=5)).replace(microsecond=0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "not valid"),
        (lambda t: "x" + t, "not valid"),
        (lambda t: t.split(".")[0], "not valid"),
        (lambda t: "", "not valid"),
    ],
)
def test_a_changed_token_is_refused(clock: FakeClock, change: object, reason: str) -> None:
    signer = LinkSigner(SECRET, clock=clock)
    token = signer.sign(user_id=1, purpose="admin-login", ttl=timedelta(minutes=5))
    with pytest.raises(LinkRefused, match=reason):
        signer.verify(change(token), purpose="admin-login")  # type: ignore[operator]


def test_other_purpose_other_object_other_secret_and_expiry_are_refused(clock: FakeClock) -> None:
    signer = LinkSigner(SECRET, clock=clock)
    token = signer.sign(user_id=1, purpose="region-edit", subject="5", ttl=timedelta(minutes=5))
    with pytest.raises(LinkRefused, match="something else"):
        signer.verify(token, purpose="admin-login")
    with pytest.raises(LinkRefused, match="something else"):
        signer.verify(token, purpose="region-edit", subject="6")
    with pytest.raises(LinkRefused, match="another server"):
        LinkSigner(b"another secret of enough length", clock=clock).verify(
            token, purpose="region-edit"
        )
    clock.advance(5 * 60)
    with pytest.raises(LinkRefused, match="expired"):
        signer.verify(token, purpose="region-edit")


async def test_a_link_is_redeemed_once_even_by_two_processes(
    db: Database, clock: FakeClock
) -> None:
    signer = LinkSigner(SECRET, clock=clock)
    token = signer.sign(user_id=7, purpose="admin-login", ttl=timedelta(minutes=5))
    first, second = WebLogins(db, clock=clock), WebLogins(db, clock=clock)
    assert (await signer.redeem(token, first, purpose="admin-login")).user_id == 7
    with pytest.raises(LinkRefused, match="already used"):
        await signer.redeem(token, second, purpose="admin-login")
    other = signer.sign(user_id=7, purpose="admin-login", ttl=timedelta(minutes=5))
    assert (await signer.redeem(other, second, purpose="admin-login")).user_id == 7


async def test_sessions_expire_and_end(db: Database, clock: FakeClock) -> None:
    logins = WebLogins(db, clock=clock)
    session_id, session = await logins.create_session(9, timedelta(hours=1))
    assert (await logins.session(session_id)) == session
    assert await logins.session(session_id + "x") is None
    clock.advance(3600)
    assert await logins.session(session_id) is None
    assert await logins.forget_expired() == 1
    again, _ = await logins.create_session(9, timedelta(hours=1))
    await logins.end_session(again)
    assert await logins.session(again) is None


def test_the_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = load_secret(None, tmp_path / "data")
    assert len(first) >= 32 and load_secret(None, tmp_path / "data") == first
    mode = stat.S_IMODE(os.stat(tmp_path / "data" / "web_secret").st_mode)
    assert mode == 0o600
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["web_secret"]
    assert load_secret("configured-secret-value", tmp_path / "other") == b"configured-secret-value"
    assert not (tmp_path / "other").exists()
    with pytest.raises(ValueError, match="at least 16"):
        load_secret("short", tmp_path)
