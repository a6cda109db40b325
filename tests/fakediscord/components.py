"""Message components as the bot rendered them: buttons and select menus, v1 rows or v2 layouts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Button:
    """A button as the bot rendered it."""

    custom_id: str | None
    label: str | None
    style: int
    emoji: str | None
    disabled: bool
    url: str | None
    row: int


@dataclass(frozen=True)
class SelectMenu:
    """A select menu as the bot rendered it."""

    custom_id: str
    type: int
    options: list[dict[str, Any]]
    placeholder: str | None
    min_values: int
    max_values: int
    disabled: bool
    row: int

    @property
    def values(self) -> list[str]:
        """The option values offered."""
        return [str(option["value"]) for option in self.options]

    @property
    def defaults(self) -> list[str]:
        """The option values marked as selected by default."""
        return [str(option["value"]) for option in self.options if option.get("default")]


def emoji_text(emoji: dict[str, Any] | None) -> str | None:
    if not emoji:
        return None
    if emoji.get("id"):
        return f"<{'a' if emoji.get('animated') else ''}:{emoji.get('name')}:{emoji['id']}>"
    name = emoji.get("name")
    return str(name) if name is not None else None


def walk_components(components: list[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every interactive component with the index of its top-level row (v1 and v2 layouts)."""
    for row, top in enumerate(components):
        stack = [top]
        while stack:
            node = stack.pop(0)
            if node.get("type") in (2, 3, 4, 5, 6, 7, 8):
                yield row, node
            stack.extend(node.get("components", []) or [])
            # v2 sections have an accessory; labels wrap a single component.
            for key in ("accessory", "component"):
                if node.get(key):
                    stack.append(node[key])
