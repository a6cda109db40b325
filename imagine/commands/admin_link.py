"""``imagine admin-link [--user ID]``: print a one-time login link to the admin dashboard.

The link is signed with the bot's web secret (``web_secret``, or the one generated in the data
dir) and points at ``public_url`` (or ``http://localhost:<web_port>``); it works once, for a few
minutes. Changes made in that session are recorded as the operator's (id 0), or as ``--user``.
"""

from __future__ import annotations

import argparse
import sys

from imagine.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the link; exit 2 when the web server is not configured."""
    from bot.web.dashboard import LINK_LIFETIME, login_link
    from bot.web.server import WebConfig, WebServer
    from storage.audit import OPERATOR

    if settings.web_port is None:
        print(
            "imagine admin-link: the web server is off; set web_port (and public_url) first",
            file=sys.stderr,
        )
        return 2
    if settings.web_port == 0 and not settings.public_url:
        print(
            "imagine admin-link: web_port is 0 (any free port); set public_url so the link "
            "can name the address",
            file=sys.stderr,
        )
        return 2
    user = args.user if args.user is not None else OPERATOR
    if user < 0:
        print(f"imagine admin-link: --user must be a Discord user id, got {user}", file=sys.stderr)
        return 2
    try:
        config = WebConfig.from_settings(settings, settings.data_dir)
    except (ValueError, OSError) as exc:
        print(f"imagine admin-link: {exc}", file=sys.stderr)
        return 2
    assert config is not None
    print(login_link(WebServer(config), user))
    minutes = int(LINK_LIFETIME.total_seconds() // 60)
    print(f"(works once, for {minutes} minutes)", file=sys.stderr)
    return 0
