"""Bot-token REST routes: users, gateway, applications and commands, channels, messages, guild."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._messages import ApiError, Body
from ._rest import body_of, fake_of, json_response
from .models import ATTACH_FILES, SEND_MESSAGES, VIEW_CHANNEL, Command, Guild, Message


def _int(request: web.Request, key: str) -> int:
    try:
        return int(request.match_info[key])
    except ValueError:
        raise ApiError(400, 50035, f"Invalid Form Body: {key}: value is not snowflake") from None


async def me(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    return json_response(
        fake.bot_user.payload() | {"verified": True, "mfa_enabled": False, "flags": 0}
    )


async def get_user(request: web.Request) -> web.StreamResponse:
    user = fake_of(request).user(_int(request, "user_id"))
    if user is None:
        raise ApiError(404, 10013, "Unknown User")
    return json_response(user.payload())


async def gateway(request: web.Request) -> web.StreamResponse:
    return json_response({"url": fake_of(request).gateway_url})


async def gateway_bot(request: web.Request) -> web.StreamResponse:
    return json_response(
        {
            "url": fake_of(request).gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14400000,
                "max_concurrency": 1,
            },
        }
    )


async def application(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    return json_response(
        {
            "id": str(fake.application_id),
            "name": fake.bot_user.name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot": fake.bot_user.payload(),
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": fake.owner.payload(),
            "team": None,
            "flags": 0,
            "rpc_origins": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": 1,
        }
    )


def _scope(request: web.Request) -> int | None:
    fake = fake_of(request)
    if _int(request, "application_id") != fake.application_id:
        raise ApiError(403, 50001, "Missing Access (not this application)")
    if "guild_id" not in request.match_info:
        return None
    guild_id = _int(request, "guild_id")
    guild = fake.guild_by_id(guild_id)
    if guild is None or not guild.has(fake.bot_user):
        raise ApiError(403, 50001, "Missing Access (bot is not in that guild)")
    return guild_id


def _validate_command(data: Any, index: int | None = None) -> dict[str, Any]:
    where = "" if index is None else f"{index}."
    if not isinstance(data, dict) or not data.get("name"):
        raise ApiError(400, 50035, f"Invalid Form Body: {where}name: This field is required")
    kind = int(data.get("type", 1))
    name = str(data["name"])
    if kind == 1 and (name != name.lower() or len(name) > 32 or " " in name):
        raise ApiError(
            400, 50035, f"Invalid Form Body: {where}name: invalid slash command name {name!r}"
        )
    if kind == 1 and not 1 <= len(data.get("description") or "") <= 100:
        raise ApiError(
            400, 50035, f"Invalid Form Body: {where}description: must be 1-100 characters"
        )
    return data


def _upsert(request: web.Request, scope: int | None, data: dict[str, Any]) -> Command:
    fake = fake_of(request)
    key = (scope, str(data["name"]), int(data.get("type", 1)))
    existing = fake.commands.get(key)
    command = Command(
        id=existing.id if existing else fake.snowflake(), guild_id=scope, definition=data
    )
    fake.commands[key] = command
    return command


async def list_commands(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    scope = _scope(request)
    commands = [c for c in fake.commands.values() if c.guild_id == scope]
    return json_response([c.payload(fake.application_id) for c in commands])


async def bulk_commands(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    scope = _scope(request)
    body = await body_of(request)
    if not isinstance(body.json, list):
        raise ApiError(400, 50035, "Invalid Form Body: expected a list of commands")
    definitions = [_validate_command(d, i) for i, d in enumerate(body.json)]
    keep = {(scope, str(d["name"]), int(d.get("type", 1))) for d in definitions}
    for key in [k for k in fake.commands if k[0] == scope and k not in keep]:
        del fake.commands[key]
    commands = [_upsert(request, scope, d) for d in definitions]
    return json_response([c.payload(fake.application_id) for c in commands])


async def create_command(request: web.Request) -> web.StreamResponse:
    scope = _scope(request)
    body = await body_of(request)
    command = _upsert(request, scope, _validate_command(body.json))
    return json_response(command.payload(fake_of(request).application_id), status=201)


def _command(request: web.Request) -> Command:
    scope = _scope(request)
    command_id = _int(request, "command_id")
    for command in fake_of(request).commands.values():
        if command.id == command_id and command.guild_id == scope:
            return command
    raise ApiError(404, 10063, "Unknown application command")


async def get_command(request: web.Request) -> web.StreamResponse:
    return json_response(_command(request).payload(fake_of(request).application_id))


async def edit_command(request: web.Request) -> web.StreamResponse:
    command = _command(request)
    body = await body_of(request)
    command.definition = command.definition | dict(body.json or {})
    return json_response(command.payload(fake_of(request).application_id))


async def delete_command(request: web.Request) -> web.StreamResponse:
    command = _command(request)
    fake = fake_of(request)
    for key in [k for k, c in fake.commands.items() if c is command]:
        del fake.commands[key]
    return web.Response(status=204)


def _channel_id(request: web.Request) -> int:
    fake = fake_of(request)
    channel_id = _int(request, "channel_id")
    channel = fake.channel_by_id(channel_id)
    if channel is None:
        raise ApiError(404, 10003, "Unknown Channel")
    if not fake.guild.permissions_in(fake.bot_user, channel) & VIEW_CHANNEL:
        raise ApiError(403, 50001, "Missing Access")
    return channel_id


def _check_can_post(request: web.Request, channel_id: int, body: Body) -> None:
    """Posting needs Send Messages, and Attach Files for files (Discord's 50013)."""
    fake = fake_of(request)
    channel = fake.channel_by_id(channel_id)
    assert channel is not None
    allowed = fake.guild.permissions_in(fake.bot_user, channel)
    if not allowed & SEND_MESSAGES or (body.files and not allowed & ATTACH_FILES):
        raise ApiError(403, 50013, "Missing Permissions")


def _message(request: web.Request) -> Message:
    channel_id = _channel_id(request)
    message = fake_of(request).messages.get(_int(request, "message_id"))
    # Ephemeral messages exist only for their user: the bot token cannot see them.
    if message is None or message.deleted or message.channel_id != channel_id or message.ephemeral:
        raise ApiError(404, 10008, "Unknown Message")
    return message


async def get_channel(request: web.Request) -> web.StreamResponse:
    channel = fake_of(request).channel_by_id(_channel_id(request))
    assert channel is not None
    return json_response(channel.payload())


async def create_message(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    channel_id = _channel_id(request)
    body = await body_of(request)
    _check_can_post(request, channel_id, body)
    data = body.json if isinstance(body.json, dict) else {}
    message = fake.new_message(channel_id, fake.bot_user)
    if int(data.get("flags") or 0) & 64:
        raise ApiError(
            400, 50035, "Invalid Form Body: flags: ephemeral is only for interaction responses"
        )
    reference = data.get("message_reference")
    if reference:
        message.type = 19
    fake.apply_body(message, body, creating=True, via="channel")
    fake.store(message)
    await fake.announce("MESSAGE_CREATE", message)
    return json_response(fake.message_payload(message))


async def list_messages(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    channel = fake.channel_by_id(_channel_id(request))
    limit = int(request.query.get("limit", "50"))
    newest_first = list(reversed(fake.channel_messages(channel)))[:limit]
    return json_response([fake.message_payload(m) for m in newest_first])


async def get_message(request: web.Request) -> web.StreamResponse:
    return json_response(fake_of(request).message_payload(_message(request)))


async def edit_message(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    message = _message(request)
    if message.author is not fake.bot_user:
        raise ApiError(403, 50005, "Cannot edit a message authored by another user")
    body = await body_of(request)
    fake.apply_body(message, body, creating=False, via="channel")
    await fake.announce("MESSAGE_UPDATE", message)
    return json_response(fake.message_payload(message))


async def delete_message(request: web.Request) -> web.StreamResponse:
    message = _message(request)
    message.deleted = True
    await fake_of(request).announce("MESSAGE_DELETE", message)
    return web.Response(status=204)


async def typing(request: web.Request) -> web.StreamResponse:
    _channel_id(request)
    return web.Response(status=204)


def _guild(request: web.Request) -> Guild:
    fake = fake_of(request)
    guild = fake.guild_by_id(_int(request, "guild_id"))
    if guild is None or not guild.has(fake.bot_user):
        raise ApiError(404, 10004, "Unknown Guild")
    return guild


async def get_guild(request: web.Request) -> web.StreamResponse:
    guild = _guild(request)
    data = guild.payload()
    data["approximate_member_count"] = len(guild.members)
    data["approximate_presence_count"] = 0
    return json_response(data)


async def guild_channels(request: web.Request) -> web.StreamResponse:
    return json_response([c.payload() for c in _guild(request).channels])


async def guild_roles(request: web.Request) -> web.StreamResponse:
    guild = _guild(request)
    return json_response([guild.everyone.payload()] + [r.payload() for r in guild.roles])


async def guild_member(request: web.Request) -> web.StreamResponse:
    guild = _guild(request)
    fake = fake_of(request)
    user = fake.user(_int(request, "user_id"))
    if user is None or not guild.has(user):
        raise ApiError(404, 10007, "Unknown Member")
    return json_response(fake.member_payload(user, guild=guild))


async def guild_members(request: web.Request) -> web.StreamResponse:
    guild = _guild(request)
    fake = fake_of(request)
    limit = int(request.query.get("limit", "1"))
    after = int(request.query.get("after", "0"))
    members = sorted((m for m in guild.members if m.id > after), key=lambda m: m.id)
    return json_response([fake.member_payload(m, guild=guild) for m in members[:limit]])


async def leave_guild(request: web.Request) -> web.StreamResponse:
    """The bot leaves a guild: it is no member any more and gets GUILD_DELETE."""
    guild = _guild(request)
    fake = fake_of(request)
    guild.members = [m for m in guild.members if m is not fake.bot_user]
    fake.left_guilds.append(guild)
    await fake.gateway.dispatch("GUILD_DELETE", {"id": str(guild.id)})
    return web.Response(status=204)


COMMANDS = "/applications/{application_id}"
GUILD_COMMANDS = "/applications/{application_id}/guilds/{guild_id}"
MESSAGES = "/channels/{channel_id}/messages"

ROUTES = [
    ("GET", "/users/@me", me),
    ("DELETE", "/users/@me/guilds/{guild_id}", leave_guild),
    ("GET", "/users/{user_id}", get_user),
    ("GET", "/gateway", gateway),
    ("GET", "/gateway/bot", gateway_bot),
    ("GET", "/applications/@me", application),
    ("GET", "/oauth2/applications/@me", application),
    *[
        route
        for base in (COMMANDS, GUILD_COMMANDS)
        for route in (
            ("GET", base + "/commands", list_commands),
            ("PUT", base + "/commands", bulk_commands),
            ("POST", base + "/commands", create_command),
            ("GET", base + "/commands/{command_id}", get_command),
            ("PATCH", base + "/commands/{command_id}", edit_command),
            ("DELETE", base + "/commands/{command_id}", delete_command),
        )
    ],
    ("GET", "/channels/{channel_id}", get_channel),
    ("POST", MESSAGES, create_message),
    ("GET", MESSAGES, list_messages),
    ("GET", MESSAGES + "/{message_id}", get_message),
    ("PATCH", MESSAGES + "/{message_id}", edit_message),
    ("DELETE", MESSAGES + "/{message_id}", delete_message),
    ("POST", "/channels/{channel_id}/typing", typing),
    ("GET", "/guilds/{guild_id}", get_guild),
    ("GET", "/guilds/{guild_id}/channels", guild_channels),
    ("GET", "/guilds/{guild_id}/roles", guild_roles),
    ("GET", "/guilds/{guild_id}/members", guild_members),
    ("GET", "/guilds/{guild_id}/members/{user_id}", guild_member),
]
