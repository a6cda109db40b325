"""REST endpoints under ``/api/v10``, attachment downloads and the gateway route."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._messages import ApiError, Body, read_body
from .models import Request

if TYPE_CHECKING:
    from .server import FakeDiscord

_log = logging.getLogger(__name__)
API = "/api/v10"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAKE = web.AppKey("fake", object)
BODY = web.RequestKey("body", Body)
# Webhook and callback routes are authorised by the token in their path, not the bot token.
TOKEN_IN_PATH = ("/interactions/", "/webhooks/", "/gateway")


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON reply whose Content-Type is exactly ``application/json`` (discord.py checks)."""
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def fake_of(request: web.Request) -> FakeDiscord:
    """The fake serving this app."""
    return request.app[FAKE]  # type: ignore[return-value]


def install(app: web.Application, fake: FakeDiscord) -> None:
    """Register every route and the recording middleware."""
    from . import _interactions, _resources

    app[FAKE] = fake
    app.middlewares.append(_middleware)
    app.router.add_get("/gateway", fake.gateway.handle)
    app.router.add_get("/gateway-resume", fake.gateway.handle)
    app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", _download)
    for method, path, handler in [*_resources.ROUTES, *_interactions.ROUTES]:
        app.router.add_route(method, API + path, handler)
    app.router.add_route("*", API + "/{tail:.*}", _unknown)


async def _unknown(request: web.Request) -> web.StreamResponse:
    raise ApiError(404, 0, f"404: Not Found ({request.method} {request.path} is not faked)")


async def _download(request: web.Request) -> web.StreamResponse:
    fake = fake_of(request)
    attachment = fake.attachment(
        int(request.match_info["channel_id"]), int(request.match_info["attachment_id"])
    )
    if attachment is None or attachment.filename != request.match_info["filename"]:
        return web.Response(status=404, text="attachment not found")
    return web.Response(body=attachment.data, headers={"Content-Type": attachment.content_type})


def _route_of(request: web.Request) -> str:
    if request.path.startswith(API):
        info = request.match_info
        resource = info.route.resource if info.route else None
        canonical = resource.canonical if resource is not None else ""
        if canonical.endswith("{tail}"):
            return "unknown"
        return canonical[len(API) :]
    return request.path


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API):
        return await handler(request)
    fake = fake_of(request)
    route = _route_of(request)
    concrete = request.path[len(API) :]
    response: web.StreamResponse
    rule = next(
        (
            r
            for r in fake.rate_limits
            if r.method == request.method and r.path in (route, concrete) and r.hits < r.times
        ),
        None,
    )
    if rule is not None:
        rule.hits += 1
        response = json_response(
            {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": rule.is_global,
            },
            status=429,
            headers={
                "Via": "1.1 google",
                "Retry-After": str(max(1, int(rule.retry_after + 0.999))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": str(rule.retry_after),
                "X-RateLimit-Bucket": f"fake-{route}",
                "X-RateLimit-Scope": "user",
            },
        )
    elif (
        not concrete.startswith(TOKEN_IN_PATH)
        and request.headers.get("Authorization") != f"Bot {fake.token}"
    ):
        response = json_response({"message": "401: Unauthorized", "code": 0}, status=401)
    elif fault := next(
        (
            f
            for f in fake.faults
            if f.matches(request.method, (route, concrete), request.content_type)
        ),
        None,
    ):
        fault.hits += 1
        response = json_response({"message": fault.message, "code": fault.code}, fault.status)
    else:
        try:
            response = await handler(request)
        except ApiError as error:
            response = json_response(error.body(), status=error.status)
        except Exception as error:
            # A bug in the fake: answer 400 (a 5xx would make discord.py retry for seconds)
            # and keep it, so the test fails fast and says why.
            _log.exception("fake Discord failed on %s %s", request.method, request.path)
            fake.server_errors.append(error)
            response = json_response(
                {"message": f"fake Discord failed: {error!r}", "code": 0}, status=400
            )
    body = request.get(BODY)
    fake.requests.append(
        Request(
            method=request.method,
            path=concrete,
            route=route,
            status=response.status,
            json=body.json if body else None,
            files=body.files if body else [],
            query=dict(request.query),
            at=asyncio.get_running_loop().time(),
        )
    )
    await fake._notify()
    return response


async def body_of(request: web.Request) -> Body:
    """Read the body once and keep it for the request log."""
    body = await read_body(request)
    request[BODY] = body
    return body
