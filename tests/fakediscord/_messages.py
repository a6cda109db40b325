"""Message bodies: reading JSON or multipart requests and validating them like Discord."""

from __future__ import annotations

import io
import json
import mimetypes
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from .models import COMPONENTS_V2, EPHEMERAL, Message, Pings

MAX_CONTENT = 2000
MAX_ROWS = 5
MAX_PER_ROW = 5
MAX_EMBEDS = 10
# Flags a bot may set when creating a message: suppress embeds, ephemeral, silent, components v2.
SETTABLE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | COMPONENTS_V2


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_MENTION_KINDS = ("users", "roles", "everyone")


class ApiError(Exception):
    """An error response in Discord's shape: status, JSON error code, message."""

    def __init__(self, status: int, code: int, message: str, errors: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        data: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            data["errors"] = self.errors
        return data


def invalid_form(field_path: str, message: str) -> ApiError:
    """A 400 Invalid Form Body naming the bad field."""
    errors: Any = {"_errors": [{"code": "BASE_TYPE_INVALID", "message": message}]}
    for part in reversed(field_path.split(".")):
        errors = {part: errors}
    return ApiError(400, 50035, f"Invalid Form Body: {field_path}: {message}", errors)


@dataclass
class Body:
    """A parsed request body: the JSON payload and the uploaded files by index."""

    json: Any
    files: list[tuple[str, bytes]] = field(default_factory=list)


async def read_body(request: web.Request) -> Body:
    """Read ``application/json`` or ``multipart/form-data`` with ``payload_json`` + ``files[n]``."""
    if request.content_type == "multipart/form-data":
        payload: Any = {}
        indexed: dict[int, tuple[str, bytes]] = {}
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            data = bytes(await part.read(decode=False))
            if name == "payload_json":
                payload = json.loads(data.decode())
            elif name.startswith("files[") and name.endswith("]"):
                indexed[int(name[6:-1])] = (part.filename or f"file{name[6:-1]}", data)
            elif name.startswith("file"):
                indexed[len(indexed)] = (part.filename or name, data)
        return Body(payload, [indexed[i] for i in sorted(indexed)])
    raw = await request.read()
    if not raw:
        return Body(None)
    try:
        return Body(json.loads(raw))
    except ValueError:
        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None


def validate_message(body: dict[str, Any], where: str = "") -> None:
    """Reject what Discord rejects: too-long content, too many rows/buttons, bad components."""
    prefix = f"{where}." if where else ""
    content = body.get("content")
    if content is not None and len(str(content)) > MAX_CONTENT:
        raise invalid_form(
            f"{prefix}content", f"Must be {MAX_CONTENT} or fewer in length (got {len(content)})."
        )
    embeds = body.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        raise invalid_form(f"{prefix}embeds", f"Must be {MAX_EMBEDS} or fewer in length.")
    components = body.get("components") or []
    if int(body.get("flags") or 0) & COMPONENTS_V2:
        return
    if len(components) > MAX_ROWS:
        raise invalid_form(
            f"{prefix}components", f"Must be {MAX_ROWS} or fewer in length (got {len(components)})."
        )
    seen: set[str] = set()
    for r, row in enumerate(components):
        path = f"{prefix}components.{r}"
        if row.get("type") != 1:
            raise invalid_form(f"{path}.type", "Top-level components must be action rows (1).")
        children = row.get("components") or []
        if not children or len(children) > MAX_PER_ROW:
            raise invalid_form(
                f"{path}.components", f"Must be 1 to {MAX_PER_ROW} in length (got {len(children)})."
            )
        for c, child in enumerate(children):
            _validate_child(child, f"{path}.components.{c}", seen, len(children))


def _validate_child(child: dict[str, Any], path: str, seen: set[str], siblings: int) -> None:
    kind = child.get("type")
    if kind in (3, 5, 6, 7, 8) and siblings != 1:
        raise invalid_form(path, "A select menu must be alone in its action row.")
    if kind == 2:
        style = child.get("style")
        if style not in (1, 2, 3, 4, 5, 6):
            raise invalid_form(f"{path}.style", f"Button style must be 1..6 (got {style!r}).")
        if style == 5:
            if not child.get("url"):
                raise invalid_form(f"{path}.url", "Link buttons need a url.")
            return
        if not child.get("label") and not child.get("emoji"):
            raise invalid_form(path, "A button needs a label or an emoji.")
        if len(child.get("label") or "") > 80:
            raise invalid_form(f"{path}.label", "Must be 80 or fewer in length.")
    elif kind not in (3, 4, 5, 6, 7, 8):
        raise invalid_form(f"{path}.type", f"Unknown component type {kind!r}.")
    custom_id = child.get("custom_id")
    if not custom_id:
        raise invalid_form(f"{path}.custom_id", "This field is required.")
    if len(custom_id) > 100:
        raise invalid_form(f"{path}.custom_id", "Must be 100 or fewer in length.")
    if custom_id in seen:
        raise invalid_form(f"{path}.custom_id", f"Duplicate custom_id {custom_id!r}.")
    seen.add(custom_id)


def guess_type(filename: str) -> str:
    """The content type Discord would report for a file name."""
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of an image, read from its header only."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


def is_empty(message: Message) -> bool:
    """Nothing to show: Discord refuses such a message."""
    return not (message.content or message.embeds or message.attachments or message.components)


def notified(content: str, allowed: Any) -> Pings:
    """Whom ``content`` notifies under an ``allowed_mentions`` object (None: every mention)."""
    users = tuple(dict.fromkeys(int(u) for u in _USER_MENTION.findall(content)))
    roles = tuple(dict.fromkeys(int(r) for r in _ROLE_MENTION.findall(content)))
    everyone = "@everyone" in content or "@here" in content
    if allowed is None:
        return Pings(users, roles, everyone)
    if not isinstance(allowed, dict):
        raise invalid_form("allowed_mentions", "must be an object")
    parse = allowed.get("parse") or []
    if any(kind not in _MENTION_KINDS for kind in parse):
        raise invalid_form("allowed_mentions.parse", f"values must be in {_MENTION_KINDS}")
    listed_users = {int(u) for u in allowed.get("users") or []}
    listed_roles = {int(r) for r in allowed.get("roles") or []}
    for kind, listed in (("users", listed_users), ("roles", listed_roles)):
        if kind in parse and listed:
            raise invalid_form(
                f"allowed_mentions.{kind}", f"cannot be given with {kind!r} in parse"
            )
    return Pings(
        users=tuple(u for u in users if "users" in parse or u in listed_users),
        roles=tuple(r for r in roles if "roles" in parse or r in listed_roles),
        everyone=everyone and "everyone" in parse,
    )
