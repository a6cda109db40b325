"""Readiness checks on the database, shared by the bot's and the workers' health endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from storage.db import Database

CHECK_TIMEOUT = 3.0


@dataclass(frozen=True)
class Check:
    """One readiness condition: its name, whether it holds, and a short explanation."""

    name: str
    ok: bool
    detail: str


async def database_checks(db: Database, head: str, *, limit: float = CHECK_TIMEOUT) -> list[Check]:
    """The database answers within ``limit`` seconds and its schema is at revision ``head``."""
    try:
        async with asyncio.timeout(limit), db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return [Check("database", False, f"no answer within {limit:g} s")]
    except (SQLAlchemyError, OSError) as exc:
        return [Check("database", False, f"unreachable: {_reason(exc)}")]
    checks = [Check("database", True, "reachable")]
    try:
        async with asyncio.timeout(limit), db.read() as conn:
            current = (
                await conn.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except TimeoutError:
        return [*checks, Check("migrations", False, f"no answer within {limit:g} s")]
    except (SQLAlchemyError, OSError) as exc:
        return [*checks, Check("migrations", False, f"cannot read the version: {_reason(exc)}")]
    if current == head:
        checks.append(Check("migrations", True, f"at {head}"))
    elif current is None:
        checks.append(Check("migrations", False, f"never applied; newest is {head}"))
    else:
        checks.append(Check("migrations", False, f"at {current}, newest is {head}"))
    return checks


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).splitlines() or [""])[0][:200]
    return f"{type(cause).__name__}: {first}"


Readiness = Callable[[], Awaitable[list[Check]]]


def add_health_routes(app: web.Application, readiness: Sequence[Readiness]) -> None:
    """``GET /healthz`` (the process answers) and ``GET /readyz`` (every check holds: 200, else
    503), both JSON, on ``app``; the bot's web server and each worker's health port use it."""

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_request: web.Request) -> web.Response:
        checks = [check for probe in readiness for check in await probe()]
        ok = all(check.ok for check in checks)
        body = {
            "ok": ok,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        }
        return web.json_response(body, status=200 if ok else 503)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
