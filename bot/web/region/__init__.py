"""Vary (Region): a browser editor, served by the bot's web server, for repainting part of an image.

A click on Vary (Region) answers privately with a signed link (bound to the clicker, the image
and the channel; it expires after ``region_link_minutes`` and queues one job). The page shows
the image; the user paints the part to repaint (brush or rectangle, undo, clear), may edit the
prompt, and submits: the mask is checked, stored in the image store, and an inpaint grid is
queued through the same enqueue as a button, its message posted in the channel.

``setup`` registers the routes on the server; ``editor_link`` makes a click's link.
"""

from __future__ import annotations

from bot.edit_jobs import MessagePoster
from bot.services import Services
from bot.web.region._links import PURPOSE, EditorTarget, editor_link
from bot.web.region._routes import RegionEditor
from bot.web.server import WebServer

__all__ = ["PURPOSE", "EditorTarget", "MessagePoster", "editor_link", "setup"]


def setup(server: WebServer, client: MessagePoster, services: Services) -> None:
    """Add the editor's pages to ``server`` (before it starts)."""
    RegionEditor(server, client, services).register()
