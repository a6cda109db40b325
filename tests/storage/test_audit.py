"""Admin changes are recorded with the admin's id, in the same transaction as the change."""

from __future__ import annotations

import pytest

from storage.audit import OPERATOR, Actor, AuditLog
from storage.db import Database
from storage.errors import InvalidValue, UserNotFound
from storage.quotas import Quotas
from storage.users import Users


async def test_every_admin_change_is_recorded_with_who_and_how(
    db: Database, quotas: Quotas, users: Users
) -> None:
    admin = Actor(501, "dashboard")
    await quotas.set_limit(42, 10, "week", actor=admin)
    await quotas.set_caps(42, max_concurrent=2, max_queued=None, actor=Actor(502, "discord"))
    await quotas.reset(42, actor=admin)
    await quotas.set_server_limits(max_queued=20, actor=Actor(OPERATOR, "cli"))
    await users.ban(42, actor=admin)
    await users.unban(42, actor=admin)
    await users.add_banned_word("Spam", actor=admin)
    assert not await users.add_banned_word("spam", actor=admin)  # no change, no record
    await users.remove_banned_word("spam", actor=admin)
    await quotas.set_limit(43, 5, "day")  # no actor: nothing to record

    entries = list(reversed(await AuditLog(db).recent()))
    assert [(e.admin_id, e.via, e.action, e.target, e.detail) for e in entries] == [
        (501, "dashboard", "quota.set", "42", {"images": 10, "period": "week"}),
        (502, "discord", "limits.set", "42", {"max_concurrent": 2}),
        (501, "dashboard", "quota.reset", "42", {"used": 0}),
        (0, "cli", "server_limits.set", None, {"max_queued": 20}),
        (501, "dashboard", "user.ban", "42", None),
        (501, "dashboard", "user.unban", "42", None),
        (501, "dashboard", "word.add", "spam", None),
        (501, "dashboard", "word.remove", "spam", None),
    ]
    assert [e.action for e in await AuditLog(db).recent(target="42", limit=2)] == [
        "user.unban",
        "user.ban",
    ]


async def test_a_refused_change_records_nothing(db: Database, users: Users) -> None:
    with pytest.raises(UserNotFound):
        await users.unban(77, actor=Actor(1, "dashboard"))
    assert await AuditLog(db).recent() == []
    with pytest.raises(InvalidValue, match="audit source"):
        Actor(1, "email")
