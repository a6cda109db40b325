"""The /settings choices, without discord."""

from __future__ import annotations

import pytest

from bot.errors import UserFacingError
from bot.settings_menu import apply_choice, current_value, options_for
from storage.contract import SpeedMode, UserSettings, VariationStrength


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("aspect", "16:9", UserSettings(aspect="16:9")),
        ("aspect", "1:1", UserSettings(aspect=None)),
        ("variation", "subtle", UserSettings(variation=VariationStrength.SUBTLE)),
        ("stylize", "250", UserSettings(stylize=250)),
        ("raw", "on", UserSettings(raw=True)),
        ("mode", "relax", UserSettings(mode=SpeedMode.RELAX)),
    ],
)
def test_each_choice_changes_one_field(field: str, value: str, expected: UserSettings) -> None:
    assert apply_choice(field, value, UserSettings(), allow_relax=True) == expected
    assert current_value(field, expected) == value


def test_relax_is_not_offered_when_the_server_forbids_it() -> None:
    values = [v for _, v in options_for("mode", UserSettings(), allow_relax=False)]
    assert values == ["turbo", "fast"]
    with pytest.raises(
        UserFacingError, match="'relax' is not a choice for mode; choose one of turbo, fast"
    ):
        apply_choice("mode", "relax", UserSettings(), allow_relax=False)
