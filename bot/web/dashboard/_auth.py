"""Dashboard logins: a signed one-time link becomes a session cookie; every page checks it.

The link (``/admin dashboard`` or ``imagine admin-link``) opens a page with a sign-in button;
only that POST uses the link up, so a chat client that fetches links for previews cannot spend
it. The session cookie is HttpOnly and SameSite=Strict; every form also carries the session's
CSRF token, and a POST from another origin is refused. Without a live session every page
answers 401 and no change is made.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from bot.web.server import WebServer
from bot.web.signing import LinkRefused
from storage.weblinks import WebLogins, WebSession

PURPOSE = "admin-login"
LINK_LIFETIME = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(hours=12)
COOKIE = "imagine_admin"
SESSION_KEY = web.RequestKey("dashboard_session", WebSession)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Render = Callable[..., web.Response]


def login_link(server: WebServer, user_id: int) -> str:
    """A one-time link that signs ``user_id`` in to the dashboard (valid ``LINK_LIFETIME``)."""
    token = server.signer.sign(user_id=user_id, purpose=PURPOSE, ttl=LINK_LIFETIME)
    return server.url("/admin/login", token=token)


class Auth:
    """Login routes and the session check for the dashboard's pages."""

    def __init__(self, server: WebServer, logins: WebLogins, render: Render) -> None:
        self.server = server
        self.logins = logins
        self.render = render

    def routes(self) -> list[web.RouteDef]:
        """The routes that work without a session."""
        return [
            web.get("/admin/login", self.login_page),
            web.post("/admin/login", self.login),
        ]

    async def login_page(self, request: web.Request) -> web.Response:
        """Show who the link signs in, without using it up."""
        token = request.query.get("token", "")
        try:
            link = self.server.signer.verify(token, purpose=PURPOSE)
        except LinkRefused as exc:
            return self.refused(request, str(exc))
        return self.render(request, "login.html", token=token, user_id=link.user_id)

    async def login(self, request: web.Request) -> web.StreamResponse:
        """Use the link up, open a session and go to the overview."""
        form = await request.post()
        try:
            link = await self.server.signer.redeem(
                str(form.get("token", "")), self.logins, purpose=PURPOSE
            )
        except LinkRefused as exc:
            return self.refused(request, str(exc))
        session_id, _ = await self.logins.create_session(link.user_id, SESSION_LIFETIME)
        # A POST from our own page: the redirect is same-site, so the Strict cookie goes along.
        response = web.Response(status=303, headers={"Location": "/admin/"})
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/admin",
            httponly=True,
            samesite="Strict",
            secure=self.server.secure_cookies,
        )
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """End the session."""
        await self.logins.end_session(request.cookies.get(COOKIE, ""))
        response = self.render(
            request, "message.html", title="Signed out", text="You are signed out."
        )
        response.del_cookie(COOKIE, path="/admin")
        return response

    def refused(self, request: web.Request, reason: str, status: int = 401) -> web.Response:
        """The page for a refused link or a missing session."""
        return self.render(request, "refused.html", status=status, reason=reason)

    def require(self, handler: Handler) -> Handler:
        """Wrap a page: no live session, 401; a POST without the session's CSRF token, 403."""

        async def checked(request: web.Request) -> web.StreamResponse:
            session = await self.logins.session(request.cookies.get(COOKIE, ""))
            if session is None:
                return self.refused(
                    request,
                    "You are not signed in, or your session expired. Ask for a new link with "
                    "/admin dashboard in Discord (or imagine admin-link).",
                )
            request[SESSION_KEY] = session
            if request.method == "POST":
                problem = await self._forged(request, session)
                if problem:
                    return self.refused(request, problem, status=403)
            return await handler(request)

        return checked

    async def _forged(self, request: web.Request, session: WebSession) -> str | None:
        origin = self.server.foreign_origin(request)
        if origin is not None:
            return f"This form was sent from {origin}, not from the dashboard; nothing changed."
        form = await request.post()
        if not hmac.compare_digest(str(form.get("csrf", "")), session.csrf):
            return "This form is stale or was not sent by the dashboard; nothing changed."
        return None


def session_of(request: web.Request) -> WebSession:
    """The session a checked page runs under."""
    return request[SESSION_KEY]
