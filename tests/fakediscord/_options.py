"""Turn ``invoke_command("admin quota set", options={...})`` into Discord's typed option tree.

The synced command definition decides the option types, exactly as the Discord client would
only offer what the bot registered; wrong names, missing required options and out-of-range
values fail here with the reason, before anything reaches the bot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .models import Attachment, Channel, Role, User

SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)

TYPE_NAMES = {
    STRING: "string",
    INTEGER: "integer",
    BOOLEAN: "boolean",
    USER: "user",
    CHANNEL: "channel",
    ROLE: "role",
    MENTIONABLE: "mentionable",
    NUMBER: "number",
    ATTACHMENT: "attachment",
}


class CommandInputError(ValueError):
    """The test asked for an invocation the Discord client would not let a user send."""


class Resolved:
    """The ``resolved`` map of an interaction, filled while options are converted."""

    def __init__(self, member_payload: Callable[[User], dict[str, Any] | None]) -> None:
        self._member_payload = member_payload
        self.users: dict[str, Any] = {}
        self.members: dict[str, Any] = {}
        self.roles: dict[str, Any] = {}
        self.channels: dict[str, Any] = {}
        self.attachments: dict[str, Any] = {}

    def add_user(self, user: User) -> str:
        """Resolve a user (and its member) and return its id."""
        key = str(user.id)
        self.users[key] = user.payload()
        member = self._member_payload(user)
        if member is not None:  # users outside the guild resolve as users only
            self.members[key] = member
        return key

    def payload(self) -> dict[str, Any]:
        """Only the non-empty maps, like Discord."""
        data = {
            "users": self.users,
            "members": self.members,
            "roles": self.roles,
            "channels": self.channels,
            "attachments": self.attachments,
        }
        return {key: value for key, value in data.items() if value}


def build_options(
    command: dict[str, Any],
    path: list[str],
    values: Mapping[str, Any],
    resolved: Resolved,
    upload: Callable[[Any], Attachment],
) -> list[dict[str, Any]]:
    """The ``data.options`` list for the subcommand ``path`` of ``command`` with ``values``."""
    level = command
    chain: list[tuple[int, str]] = []
    for name in path:
        children = {o["name"]: o for o in level.get("options") or [] if o["type"] in (1, 2)}
        if name not in children:
            where = " ".join([command["name"], *[n for _, n in chain]])
            raise CommandInputError(
                f"/{where} has no subcommand {name!r}; it has {sorted(children) or 'none'}"
            )
        level = children[name]
        chain.append((int(level["type"]), name))
    if any(o["type"] in (1, 2) for o in level.get("options") or []):
        subs = sorted(o["name"] for o in level["options"])
        where = " ".join([command["name"], *path])
        raise CommandInputError(f"/{where} needs a subcommand, one of {subs}")

    leaf = _convert(level, " ".join([command["name"], *path]), values, resolved, upload)
    for option_type, name in reversed(chain):
        leaf = [{"type": option_type, "name": name, "options": leaf}]
    return leaf


def _convert(
    level: dict[str, Any],
    where: str,
    values: Mapping[str, Any],
    resolved: Resolved,
    upload: Callable[[Any], Attachment],
) -> list[dict[str, Any]]:
    declared = {o["name"]: o for o in level.get("options") or []}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise CommandInputError(
            f"/{where} has no option {unknown[0]!r}; its options are {sorted(declared) or 'none'}"
        )
    out: list[dict[str, Any]] = []
    for name, spec in declared.items():
        if name not in values:
            if spec.get("required"):
                raise CommandInputError(f"/{where} needs the required option {name!r}")
            continue
        value = _value(spec, where, values[name], resolved, upload)
        out.append({"name": name, "type": int(spec["type"]), "value": value})
    return out


def _value(
    spec: dict[str, Any],
    where: str,
    given: Any,
    resolved: Resolved,
    upload: Callable[[Any], Attachment],
) -> Any:
    kind = int(spec["type"])
    name = spec["name"]
    label = f"/{where} option {name!r} ({TYPE_NAMES.get(kind, kind)})"
    if kind == STRING:
        if not isinstance(given, str):
            raise CommandInputError(f"{label} takes text, got {given!r}")
        low, high = spec.get("min_length", 0), spec.get("max_length", 6000)
        if not low <= len(given) <= high:
            raise CommandInputError(f"{label} must be {low}..{high} characters, got {len(given)}")
        value: Any = given
    elif kind in (INTEGER, NUMBER):
        if isinstance(given, bool) or not isinstance(given, int | float):
            raise CommandInputError(f"{label} takes a number, got {given!r}")
        if kind == INTEGER and not float(given).is_integer():
            raise CommandInputError(f"{label} takes a whole number, got {given!r}")
        value = int(given) if kind == INTEGER else float(given)
        if "min_value" in spec and value < spec["min_value"]:
            raise CommandInputError(f"{label} must be at least {spec['min_value']}, got {value}")
        if "max_value" in spec and value > spec["max_value"]:
            raise CommandInputError(f"{label} must be at most {spec['max_value']}, got {value}")
    elif kind == BOOLEAN:
        if not isinstance(given, bool):
            raise CommandInputError(f"{label} takes True or False, got {given!r}")
        value = given
    elif kind in (USER, MENTIONABLE) and isinstance(given, User):
        value = resolved.add_user(given)
    elif kind in (ROLE, MENTIONABLE) and isinstance(given, Role):
        resolved.roles[str(given.id)] = given.payload()
        value = str(given.id)
    elif kind == CHANNEL and isinstance(given, Channel):
        data = given.payload()
        data["permissions"] = str((1 << 53) - 1)
        resolved.channels[str(given.id)] = data
        value = str(given.id)
    elif kind == ATTACHMENT:
        attachment = upload(given)
        resolved.attachments[str(attachment.id)] = attachment.payload()
        value = str(attachment.id)
    else:
        raise CommandInputError(f"{label} cannot take {given!r}")
    choices = spec.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        allowed = [c["value"] for c in choices]
        raise CommandInputError(f"{label} must be one of {allowed}, got {value!r}")
    return value
