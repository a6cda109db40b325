"""The admin dashboard: server-rendered pages on the bot's web server, behind signed logins.

``setup`` adds its routes to the server; ``login_link`` makes the one-time link that
``/admin dashboard`` sends privately and ``imagine admin-link`` prints.
"""

from __future__ import annotations

from bot.services import Services
from bot.web.dashboard._auth import LINK_LIFETIME, Auth, login_link
from bot.web.dashboard._edits import Edits
from bot.web.dashboard._pages import Pages, Templates
from bot.web.server import WebServer
from storage.weblinks import WebLogins

__all__ = ["LINK_LIFETIME", "login_link", "setup"]


def setup(server: WebServer, services: Services) -> None:
    """Register the dashboard's routes on ``server``."""
    templates = Templates()
    auth = Auth(server, WebLogins(services.db), templates.render)
    pages = Pages(services, templates)
    edits = Edits(services, pages)
    server.app.router.add_routes(auth.routes())
    for method, path, handler in [*pages.routes(), *edits.routes()]:
        server.app.router.add_route(method, path, auth.require(handler))
    server.app.router.add_post("/admin/logout", auth.require(auth.logout))
