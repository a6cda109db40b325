"""The dashboard's pages (GET): overview, jobs, one job, users, one user, moderation, audit."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jinja2
from aiohttp import web
from PIL import Image

from bot.fleet import serves_text
from bot.prompt import render as render_prompt
from bot.render import message_link, painted_items
from bot.services import Services
from bot.web.dashboard._auth import session_of
from bot.web.dashboard._charts import bar_chart
from storage.audit import AuditLog
from storage.contract import Job, JobKind, JobStatus
from storage.errors import BlobNotFound, InvalidValue, JobNotFound
from storage.history import JobHistory
from storage.weblinks import WebSession

THUMB_SIDE = 160
PAGE_SIZE = 30

Route = tuple[str, str, Callable[[web.Request], Any]]


class Templates:
    """Jinja2 templates of this package, HTML-escaped by default."""

    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("bot.web.dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["when"] = _when

    def render(
        self,
        request: web.Request,
        name: str,
        *,
        status: int = 200,
        session: WebSession | None = None,
        **context: Any,
    ) -> web.Response:
        """The page ``name`` as an HTML response (``session`` for signed-in pages)."""
        html = self.env.get_template(name).render(session=session, **context)
        response = web.Response(text=html, status=status, content_type="text/html")
        # Pages are private: never cached, never framed, no scripts at all.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
            "form-action 'self'; frame-ancestors 'none'"
        )
        return response


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _seconds(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    return f"{(end - start).total_seconds():.1f} s"


class Pages:
    """Read-only pages."""

    def __init__(self, services: Services, templates: Templates) -> None:
        self.services = services
        self.templates = templates
        self.history = JobHistory(services.db)
        self.audit = AuditLog(services.db)

    def routes(self) -> list[Route]:
        """(method, path, handler) of every page."""
        return [
            ("GET", "/admin/", self.overview),
            ("GET", "/admin/jobs", self.jobs),
            ("GET", "/admin/jobs/{job_id:[0-9]{1,18}}", self.job),
            ("GET", "/admin/jobs/{job_id:[0-9]{1,18}}/thumb.jpg", self.thumbnail),
            ("GET", "/admin/jobs/{job_id:[0-9]{1,18}}/images/{index:-?[0-9]{1,2}}.png", self.image),
            ("GET", "/admin/users", self.users),
            ("GET", "/admin/users/{user_id:[0-9]{1,20}}", self.user),
            ("GET", "/admin/moderation", self.moderation),
            ("GET", "/admin/audit", self.audit_page),
        ]

    def page(
        self, request: web.Request, name: str, status: int = 200, **context: Any
    ) -> web.Response:
        """Render a signed-in page (with the session, for the CSRF token and the header)."""
        return self.templates.render(
            request, name, status=status, session=session_of(request), **context
        )

    async def overview(self, request: web.Request) -> web.Response:
        """Queue, workers with their current job, running jobs, the week's charts."""
        stats = await self.services.queue.stats()
        running = await self.services.queue.running_jobs()
        current = {job.lease_owner: job for job in running}
        activity = await self.history.activity(7)
        hourly = [(f"{h:%a %Hh}", float(n)) for h, n in activity.jobs_per_hour]
        daily = [(f"{d:%a %d}", round(s, 1)) for d, s in activity.gpu_seconds_per_day]
        return self.page(
            request,
            "overview.html",
            stats=stats,
            running=running,
            current=current,
            serves=serves_text,
            now=datetime.now(UTC),
            jobs_chart=bar_chart("Jobs per hour, last 7 days", hourly, label_every=24),
            gpu_chart=bar_chart("GPU seconds per day, last 7 days", daily, unit=" s"),
            total_jobs=sum(n for _, n in activity.jobs_per_hour),
            total_gpu=sum(s for _, s in activity.gpu_seconds_per_day),
            limits=await self.services.quotas.server_limits(),
        )

    async def jobs(self, request: web.Request) -> web.Response:
        """Recent jobs with thumbnails; filters by user, status and kind."""
        query = request.query
        error = None
        filters = {k: query.get(k, "").strip() for k in ("user", "status", "kind", "before")}
        try:
            user = int(filters["user"]) if filters["user"] else None
            before = int(filters["before"]) if filters["before"] else None
        except ValueError:
            user = before = None
            error = "The user and page must be whole numbers (a Discord user id, a job id)."
        found: list[Job] = []
        if error is None:
            try:
                found = await self.history.find(
                    user_id=user,
                    status=filters["status"] or None,
                    kind=filters["kind"] or None,
                    before_id=before,
                    limit=PAGE_SIZE,
                )
            except InvalidValue as exc:
                error = str(exc)
        more = {k: v for k, v in filters.items() if v and k != "before"}
        return self.page(
            request,
            "jobs.html",
            status=400 if error else 200,
            jobs=found,
            filters=filters,
            error=error,
            statuses=[s.value for s in JobStatus],
            kinds=[k.value for k in JobKind],
            next_before=found[-1].id if len(found) == PAGE_SIZE else None,
            more=more,
            render=self._render,
        )

    def _render(self, job: Job) -> str:
        return render_prompt(job.request, options=self.services.parser)

    async def job(self, request: web.Request) -> web.Response:
        """One job's whole record."""
        job_id = int(request.match_info["job_id"])
        try:
            record = await self.history.record(job_id)
        except JobNotFound as exc:
            return self.page(
                request, "message.html", status=404, title="No such job", text=str(exc)
            )
        job = record.job
        return self.page(
            request,
            "job.html",
            record=record,
            job=job,
            rendered=self._render(job),
            painted=painted_items(job),
            parameters=sorted(job.request.to_dict().items()),
            link=message_link(job),
            wait=_seconds(job.created_at, job.started_at),
            run=_seconds(job.started_at, job.finished_at),
            render=self._render,
        )

    async def _image_bytes(self, job_id: int, index: int | None) -> bytes | None:
        records = {r.index: r for r in await self.services.queue.images(job_id)}
        # No index: the grid, or the single image of an upscale.
        record = (records.get(-1) or records.get(0)) if index is None else records.get(index)
        if record is None:
            return None
        try:
            return await self.services.images.get(record.sha256)
        except BlobNotFound:
            return None

    async def thumbnail(self, request: web.Request) -> web.Response:
        """A small JPEG of the job's grid (or its single image)."""
        try:
            data = await self._image_bytes(int(request.match_info["job_id"]), None)
        except JobNotFound:
            data = None
        if data is None:
            raise web.HTTPNotFound(text="no stored image")
        jpeg = await asyncio.to_thread(_thumbnail, data)
        return web.Response(
            body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"}
        )

    async def image(self, request: web.Request) -> web.Response:
        """One stored image at full size."""
        try:
            data = await self._image_bytes(
                int(request.match_info["job_id"]), int(request.match_info["index"])
            )
        except JobNotFound:
            data = None
        if data is None:
            raise web.HTTPNotFound(text="no stored image")
        return web.Response(
            body=data, content_type="image/png", headers={"Cache-Control": "private, max-age=300"}
        )

    async def users(self, request: web.Request) -> web.StreamResponse:
        """Users by recent activity, a lookup by id, the server-wide defaults."""
        wanted = request.query.get("id", "").strip()
        if wanted:
            if wanted.isdigit() and 0 < int(wanted) < 2**63:
                raise web.HTTPSeeOther(f"/admin/users/{int(wanted)}")
            return await self.users_page(request, error=f"{wanted!r} is not a Discord user id.")
        return await self.users_page(request)

    async def users_page(
        self, request: web.Request, *, error: str | None = None, status: int = 200
    ) -> web.Response:
        """The users page, with an optional error from a form."""
        return self.page(
            request,
            "users.html",
            status=400 if error else status,
            users=await self.history.known_users(),
            banned=set(await self.history.banned_users()),
            limits=await self.services.quotas.server_limits(),
            error=error,
        )

    async def user(self, request: web.Request) -> web.Response:
        """One user's quota, caps, ban, recent jobs and the changes made to them."""
        return await self.user_page(request, int(request.match_info["user_id"]))

    async def user_page(
        self,
        request: web.Request,
        user_id: int,
        *,
        error: str | None = None,
        done: str | None = None,
    ) -> web.Response:
        """The user page, with an optional error or confirmation from a form."""
        services = self.services
        return self.page(
            request,
            "user.html",
            status=400 if error else 200,
            user_id=user_id,
            status_=await services.quotas.status(user_id),
            banned=await services.users.is_banned(user_id),
            jobs=await self.history.find(user_id=user_id, limit=10),
            changes=await self.audit.recent(20, target=str(user_id)),
            error=error,
            done=done,
            render=self._render,
        )

    async def moderation(self, request: web.Request) -> web.Response:
        """Banned users and banned words."""
        return await self.moderation_page(request)

    async def moderation_page(
        self, request: web.Request, *, error: str | None = None, done: str | None = None
    ) -> web.Response:
        """The moderation page, with an optional error or confirmation from a form."""
        return self.page(
            request,
            "moderation.html",
            status=400 if error else 200,
            banned=await self.history.banned_users(),
            words=await self.services.users.banned_words(),
            error=error,
            done=done,
        )

    async def audit_page(self, request: web.Request) -> web.Response:
        """Every recorded admin change, newest first."""
        return self.page(request, "audit.html", entries=await self.audit.recent(200))


def _thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("RGB")
        small.thumbnail((THUMB_SIDE, THUMB_SIDE))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=85)
    return out.getvalue()
