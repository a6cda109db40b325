"""The /settings menus: one select per default, stored per user, working after restarts."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import discord

from bot.errors import UserFacingError, send_error
from bot.render import settings_content
from bot.services import services_of
from storage.contract import SpeedMode, UserSettings, VariationStrength

SETTINGS_TEMPLATE = r"imagine-settings:(?P<field>aspect|variation|stylize|raw|mode)"

ASPECTS = ("1:1", "4:3", "3:2", "16:9", "21:9", "2:1", "3:1", "3:4", "2:3", "9:16", "9:21", "1:2")
STYLIZE = (0, 50, 100, 250, 500, 750, 1000)


def options_for(field: str, current: UserSettings, *, allow_relax: bool) -> list[tuple[str, str]]:
    """``(label, value)`` pairs a select offers for one field."""
    if field == "aspect":
        return [(f"Aspect {a}", a) for a in ASPECTS]
    if field == "variation":
        return [("Variation: strong", "strong"), ("Variation: subtle", "subtle")]
    if field == "stylize":
        return [(f"Stylize {s}", str(s)) for s in STYLIZE]
    if field == "raw":
        return [("Raw style: off", "off"), ("Raw style: on", "on")]
    modes = [SpeedMode.TURBO, SpeedMode.FAST] + ([SpeedMode.RELAX] if allow_relax else [])
    return [(f"{m.capitalize()} mode", str(m)) for m in modes]


def current_value(field: str, current: UserSettings) -> str:
    """The value of ``field`` in ``current`` as the select encodes it."""
    if field == "aspect":
        return current.aspect or "1:1"
    if field == "variation":
        return str(current.variation)
    if field == "stylize":
        return str(current.stylize if current.stylize is not None else 100)
    if field == "raw":
        return "on" if current.raw else "off"
    return str(current.mode)


def apply_choice(
    field: str, value: str, current: UserSettings, *, allow_relax: bool
) -> UserSettings:
    """``current`` with one field changed; ``UserFacingError`` says what is allowed."""
    allowed = [v for _, v in options_for(field, current, allow_relax=allow_relax)]
    if value not in allowed:
        raise UserFacingError(
            f"{value!r} is not a choice for {field}; choose one of {', '.join(allowed)}"
        )
    if field == "aspect":
        return dataclasses.replace(current, aspect=None if value == "1:1" else value)
    if field == "variation":
        return dataclasses.replace(current, variation=VariationStrength(value))
    if field == "stylize":
        return dataclasses.replace(current, stylize=int(value))
    if field == "raw":
        return dataclasses.replace(current, raw=value == "on")
    return dataclasses.replace(current, mode=SpeedMode(value))


class SettingsSelect(discord.ui.DynamicItem[discord.ui.Select[Any]], template=SETTINGS_TEMPLATE):
    """One of the /settings selects: ``imagine-settings:<field>``."""

    def __init__(self, field: str, current: UserSettings, *, allow_relax: bool, row: int) -> None:
        self.field = field
        chosen = current_value(field, current)
        options = [
            discord.SelectOption(label=label, value=value, default=value == chosen)
            for label, value in options_for(field, current, allow_relax=allow_relax)
        ]
        super().__init__(
            discord.ui.Select(custom_id=f"imagine-settings:{field}", options=options, row=row)
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> SettingsSelect:
        """Rebuild the select from a choice on any /settings message."""
        services = services_of(interaction.client)
        return cls(
            match["field"],
            UserSettings(),
            allow_relax=services.settings.allow_relax,
            row=item.row or 0,
        )

    async def callback(self, interaction: discord.Interaction) -> None:
        """Store the choice and show the updated settings."""
        try:
            await interaction.response.defer()
            services = services_of(interaction.client)
            allow_relax = services.settings.allow_relax
            values = self.item.values
            if not values:
                return
            current = await services.users.get_settings(interaction.user.id)
            updated = apply_choice(self.field, values[0], current, allow_relax=allow_relax)
            stored = await services.users.update_settings(interaction.user.id, updated)
            await interaction.edit_original_response(
                content=settings_content(stored),
                view=settings_view(stored, allow_relax=allow_relax),
            )
        except Exception as exc:
            await send_error(interaction, exc)


def settings_view(current: UserSettings, *, allow_relax: bool) -> discord.ui.View:
    """Five selects showing ``current``; a choice is stored at once."""
    view = discord.ui.View(timeout=None)
    for row, field in enumerate(("aspect", "variation", "stylize", "raw", "mode")):
        view.add_item(SettingsSelect(field, current, allow_relax=allow_relax, row=row))
    return view
