"""The editor's HTML: two templates in the package, filled with escaped values."""

from __future__ import annotations

import functools
import html
from pathlib import Path
from string import Template

from aiohttp import web

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# Everything comes from this server: no CDN, no inline script, no framing, forms post here.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    # The link's token is in the page's address; nothing the page loads may pass it on.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@functools.cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def page(name: str, *, status: int = 200, **values: object) -> web.Response:
    """The template ``name`` with every value HTML-escaped."""
    text = _template(name).substitute({k: html.escape(str(v)) for k, v in values.items()})
    return web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
    )


def message(title: str, text: str, *, status: int = 200) -> web.Response:
    """A page that only says something: a refusal, or that the job was queued."""
    return page("message.html", status=status, title=title, text=text)
