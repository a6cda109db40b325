"""Modals (callback type 9) and their submits, checked against Discord's limits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ._messages import invalid_form

MAX_TITLE = 45
MAX_LABEL = 45
MAX_CUSTOM_ID = 100
MAX_PLACEHOLDER = 100
MAX_INPUT = 4000
MAX_COMPONENTS = 5
TEXT_INPUT, LABEL, ACTION_ROW = 4, 18, 1


def text_inputs(modal: Mapping[str, Any]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """Every text input of a modal with its label (from the input or its label wrapper)."""
    for top in modal.get("components") or []:
        if top.get("type") == LABEL:
            child = top.get("component") or {}
            if child.get("type") == TEXT_INPUT:
                yield top.get("label"), child
        for child in top.get("components") or []:
            if child.get("type") == TEXT_INPUT:
                yield child.get("label"), child


def validate_modal(data: Mapping[str, Any]) -> None:
    """Refuse a modal Discord would refuse (400 Invalid Form Body naming the field)."""
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
        raise invalid_form("data.custom_id", f"must be 1 to {MAX_CUSTOM_ID} characters")
    title = data.get("title")
    if not isinstance(title, str) or not 1 <= len(title) <= MAX_TITLE:
        raise invalid_form("data.title", f"must be 1 to {MAX_TITLE} characters")
    components = data.get("components") or []
    if not 1 <= len(components) <= MAX_COMPONENTS:
        raise invalid_form("data.components", f"must have 1 to {MAX_COMPONENTS} components")
    for top in components:
        if top.get("type") not in (ACTION_ROW, LABEL):
            raise invalid_form("data.components", f"component type {top.get('type')} in a modal")
    seen: set[str] = set()
    inputs = list(text_inputs(data))
    if not inputs:
        raise invalid_form("data.components", "a modal needs at least one text input")
    for label, node in inputs:
        _validate_input(label, node, seen)


def _validate_input(label: str | None, node: Mapping[str, Any], seen: set[str]) -> None:
    where = f"data.components.{node.get('custom_id')}"
    custom_id = node.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= MAX_CUSTOM_ID:
        raise invalid_form(f"{where}.custom_id", f"must be 1 to {MAX_CUSTOM_ID} characters")
    if custom_id in seen:
        raise invalid_form(f"{where}.custom_id", "custom_id values must be unique")
    seen.add(custom_id)
    if not isinstance(label, str) or not 1 <= len(label) <= MAX_LABEL:
        raise invalid_form(f"{where}.label", f"must be 1 to {MAX_LABEL} characters")
    if node.get("style") not in (1, 2):
        raise invalid_form(f"{where}.style", "must be 1 (short) or 2 (paragraph)")
    low, high = node.get("min_length", 0), node.get("max_length", MAX_INPUT)
    if not 0 <= low <= MAX_INPUT or not 1 <= high <= MAX_INPUT or low > high:
        raise invalid_form(f"{where}.max_length", f"lengths must be within 0..{MAX_INPUT}")
    if len(node.get("placeholder") or "") > MAX_PLACEHOLDER:
        raise invalid_form(f"{where}.placeholder", f"must be {MAX_PLACEHOLDER} or fewer")
    value = node.get("value")
    if value is not None and not (low <= len(value) <= high):
        raise invalid_form(f"{where}.value", f"must be {low} to {high} characters long")


def submit_problem(node: Mapping[str, Any], value: str) -> str | None:
    """Why the Discord client would not let a user submit ``value`` in this input, if so."""
    if not value and node.get("required", True):
        return f"modal input {node['custom_id']!r} is required"
    if not value:
        return None
    low, high = node.get("min_length", 0), node.get("max_length", MAX_INPUT)
    if not low <= len(value) <= high:
        return (
            f"modal input {node['custom_id']!r} takes {low} to {high} characters, got {len(value)}"
        )
    return None
