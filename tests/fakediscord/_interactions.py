"""Interaction callbacks and the interaction webhook (followups, @original), with deadlines."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._messages import ApiError, Body, validate_message
from ._modals import validate_modal
from ._rest import body_of, fake_of, json_response
from .models import EPHEMERAL, LOADING, Interaction, Message, Response

if TYPE_CHECKING:
    from .server import FakeDiscord

MESSAGE, DEFERRED, DEFERRED_UPDATE, UPDATE, MODAL = 4, 5, 6, 7, 9
# Which callback types each interaction type accepts.
ALLOWED = {
    2: {MESSAGE, DEFERRED, MODAL},
    3: {MESSAGE, DEFERRED, DEFERRED_UPDATE, UPDATE, MODAL},
    5: {MESSAGE, DEFERRED, DEFERRED_UPDATE, UPDATE},
}


async def callback(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    body = await body_of(request)
    interaction = fake.interaction_by_token(request.match_info["token"])
    if interaction is None or str(interaction.id) != request.match_info["interaction_id"]:
        raise ApiError(404, 10062, "Unknown interaction")
    now = asyncio.get_running_loop().time()
    if interaction.response is not None:
        raise ApiError(400, 40060, "Interaction has already been acknowledged.")
    if now > interaction.deadline:
        interaction.late_callbacks.append(now - interaction.created_at)
        raise ApiError(404, 10062, "Unknown interaction")
    payload = body.json if isinstance(body.json, dict) else {}
    kind = int(payload.get("type", 0))
    if kind not in ALLOWED.get(interaction.type, set()):
        raise ApiError(
            400,
            50035,
            f"Invalid Form Body: type: callback type {kind} is not valid for interaction type "
            f"{interaction.type} (allowed: {sorted(ALLOWED.get(interaction.type, set()))})",
        )
    data = dict(payload.get("data") or {})
    if kind in (MESSAGE, UPDATE):
        validate_message(data, "data")
    message = _apply(fake, interaction, kind, data, body)
    # Recorded before the next await, so a concurrent second callback sees it.
    interaction.response = Response(type=kind, data=data, at=now)
    interaction._acked.set()
    if message is not None and kind in (MESSAGE, DEFERRED, UPDATE):
        await fake.announce("MESSAGE_UPDATE" if kind == UPDATE else "MESSAGE_CREATE", message)
    if request.query.get("with_response") not in ("1", "true", "True"):
        return web.Response(status=204)
    info: dict[str, Any] = {"id": str(interaction.id), "type": interaction.type}
    if message is not None:
        info["response_message_id"] = str(message.id)
        info["response_message_loading"] = message.loading
        info["response_message_ephemeral"] = message.ephemeral
    resource: dict[str, Any] = {"type": kind}
    if message is not None and kind != DEFERRED_UPDATE:
        resource["message"] = fake.message_payload(message)
    return json_response({"interaction": info, "resource": resource})


def _apply(
    fake: FakeDiscord, interaction: Interaction, kind: int, data: dict[str, Any], body: Body
) -> Message | None:
    """Carry out the callback; returns the message it created or changed."""
    if kind == MODAL:
        validate_modal(data)
        interaction.modal = data
        return None
    if kind in (DEFERRED_UPDATE, UPDATE):
        target = interaction.message
        if target is None:
            raise ApiError(400, 40004, "This interaction has no message to update")
        if kind == UPDATE:
            data = {k: v for k, v in data.items() if k != "flags"}
            fake.apply_body(target, Body(data, body.files), creating=False, via="interaction")
        interaction.original = target
        return target
    message = fake.new_message(
        interaction.channel_id,
        fake.bot_user,
        type=20 if interaction.type == 2 else 0,
        webhook_id=fake.application_id,
        interaction=interaction,
    )
    if kind == DEFERRED:
        message.flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
        message.record("interaction")
    else:
        fake.apply_body(message, Body(data, body.files), creating=True, via="interaction")
    interaction.original = fake.store(message)
    return message


def _webhook_interaction(request: web.Request) -> Interaction:
    fake = fake_of(request)
    if request.match_info["application_id"] != str(fake.application_id):
        raise ApiError(404, 10015, "Unknown Webhook")
    interaction = fake.interaction_by_token(request.match_info["token"])
    if interaction is None:
        raise ApiError(401, 50027, "Invalid Webhook Token")
    if interaction.token_expired:
        raise ApiError(401, 50027, "Invalid Webhook Token")
    if interaction.response is None:
        raise ApiError(404, 10015, "Unknown Webhook")
    return interaction


def _webhook_message(interaction: Interaction, message_id: str) -> Message:
    if message_id == "@original":
        if interaction.original is None:
            raise ApiError(404, 10008, "Unknown Message")
        return interaction.original
    for message in [interaction.original, *interaction.followups]:
        if message is not None and str(message.id) == message_id and not message.deleted:
            return message
    raise ApiError(404, 10008, "Unknown Message")


async def followup(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    interaction = _webhook_interaction(request)
    body = await body_of(request)
    data = body.json if isinstance(body.json, dict) else {}
    original = interaction.original
    response = interaction.response
    if original is not None and original.loading and response and response.type == DEFERRED:
        # The first followup after a "thinking" defer replaces the loading message.
        message = original
        message.flags &= ~LOADING
        edit = Body({k: v for k, v in data.items() if k != "flags"}, body.files)
        fake.apply_body(message, edit, creating=False, via="followup")
        message.edited_at = None
        await fake.announce("MESSAGE_UPDATE", message)
    else:
        message = fake.new_message(
            interaction.channel_id,
            fake.bot_user,
            webhook_id=fake.application_id,
            interaction=interaction,
        )
        fake.apply_body(message, body, creating=True, via="followup")
        fake.store(message)
        await fake.announce("MESSAGE_CREATE", message)
    interaction.followups.append(message)
    if request.query.get("wait") in ("1", "true", "True"):
        return json_response(fake.message_payload(message))
    return web.Response(status=204)


async def get_webhook_message(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    interaction = _webhook_interaction(request)
    message = _webhook_message(interaction, request.match_info["message_id"])
    return json_response(fake.message_payload(message))


async def edit_webhook_message(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    interaction = _webhook_interaction(request)
    message = _webhook_message(interaction, request.match_info["message_id"])
    body = await body_of(request)
    data = body.json if isinstance(body.json, dict) else {}
    was_loading = message.loading
    message.flags &= ~LOADING
    edit = Body({k: v for k, v in data.items() if k != "flags"}, body.files)
    fake.apply_body(message, edit, creating=False, via="webhook")
    if was_loading:
        # Filling in a "thinking" response is not an edit in the user's eyes.
        message.edited_at = None
    await fake.announce("MESSAGE_UPDATE", message)
    return json_response(fake.message_payload(message))


async def delete_webhook_message(request: web.Request) -> web.StreamResponse:
    interaction = _webhook_interaction(request)
    message = _webhook_message(interaction, request.match_info["message_id"])
    message.deleted = True
    await fake_of(request).announce("MESSAGE_DELETE", message)
    return web.Response(status=204)


WEBHOOK = "/webhooks/{application_id}/{token}"

ROUTES = [
    ("POST", "/interactions/{interaction_id}/{token}/callback", callback),
    ("POST", WEBHOOK, followup),
    ("GET", WEBHOOK + "/messages/{message_id}", get_webhook_message),
    ("PATCH", WEBHOOK + "/messages/{message_id}", edit_webhook_message),
    ("DELETE", WEBHOOK + "/messages/{message_id}", delete_webhook_message),
]
