"""Admin rights and the guild allowlist, as tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.permissions import GuildRules

HOME, ELSEWHERE = 100, 200
RULES = GuildRules(
    admin_user_ids=frozenset({5}),
    admin_role_ids=frozenset({9}),
    home_guild_ids=frozenset({HOME}),
)


@pytest.mark.parametrize(
    ("user", "roles", "guild", "manage", "expected"),
    [
        (1, set(), HOME, True, True),  # Manage Server in a home guild
        (1, set(), ELSEWHERE, True, False),  # ... in anyone's own guild: nothing
        (1, set(), None, True, False),  # no guild at all
        (1, set(), HOME, False, False),
        (5, set(), ELSEWHERE, False, True),  # a listed user, anywhere
        (5, set(), None, False, True),
        (1, {9}, ELSEWHERE, False, True),  # a listed role, anywhere
        (1, {8, 7}, HOME, False, False),
        (1, {8}, ELSEWHERE, True, False),
    ],
)
def test_is_admin(
    user: int, roles: set[int], guild: int | None, manage: bool, expected: bool
) -> None:
    assert RULES.is_admin(user, roles, guild_id=guild, manage_guild=manage) is expected


def test_no_home_guild_means_manage_server_counts_nowhere() -> None:
    rules = GuildRules(admin_user_ids=frozenset({5}))
    assert not rules.is_admin(1, (), guild_id=HOME, manage_guild=True)
    assert rules.is_admin(5, (), guild_id=HOME, manage_guild=False)
    assert rules.has_admins() and not GuildRules().has_admins()


@dataclass
class _Config:
    guild_ids: list[int] = field(default_factory=list)
    admin_guild_ids: list[int] = field(default_factory=list)
    admin_user_ids: list[int] = field(default_factory=list)
    admin_role_ids: list[int] = field(default_factory=list)
    allowed_guild_ids: list[int] = field(default_factory=list)


@pytest.mark.parametrize(
    ("config", "home"),
    [
        (_Config(), set()),
        (_Config(guild_ids=[1, 2]), {1, 2}),  # home guilds default to the synced guilds
        (_Config(guild_ids=[1, 2], admin_guild_ids=[3]), {3}),
        (_Config(admin_guild_ids=[3]), {3}),
        (_Config(allowed_guild_ids=[4]), set()),  # allowed is not home
    ],
)
def test_home_guilds_from_settings(config: _Config, home: set[int]) -> None:
    assert GuildRules.from_settings(config).home_guild_ids == home


@pytest.mark.parametrize(
    ("allowed", "guild", "works"),
    [
        (set(), ELSEWHERE, True),  # no allowlist: every guild
        (set(), None, True),
        ({HOME}, HOME, True),
        ({HOME}, ELSEWHERE, False),
        ({HOME}, None, False),
    ],
)
def test_allowed_guilds(allowed: set[int], guild: int | None, works: bool) -> None:
    rules = GuildRules(allowed_guild_ids=frozenset(allowed))
    assert rules.allows_guild(guild) is works
    refusal = rules.guild_refusal(guild)
    assert (refusal is None) is works
    if refusal is not None:
        assert refusal.startswith("This bot works only in the servers it was set up for")


def test_refusals_say_what_would_make_an_admin() -> None:
    assert "only in its home servers" in RULES.admin_refusal(ELSEWHERE, manage_guild=True)
    assert RULES.admin_refusal(HOME, manage_guild=False).startswith(
        "Only server admins can use /admin"
    )
