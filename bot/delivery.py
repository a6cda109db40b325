"""The progress and delivery loops: job messages edited with the bot token, never twice.

Delivery reads the outbox (finished jobs due for delivery) from storage, edits the stored
channel message into the result and only then marks the job delivered, so a crash between the
two makes the next run edit the same message again instead of posting a second one. Up to
``DELIVERY_CONCURRENCY`` results are in flight at once and a slot is refilled as soon as it
frees, so a slow channel holds one slot, not the loop.

A failed attempt is recorded on the job (storage keeps the attempts and the next attempt time,
so backoff survives restarts). Discord errors no retry can fix end delivery at once: the
channel or message is gone (Unknown Channel / Unknown Message), the bot may not see or post
there (Missing Access / Missing Permissions, any 403), or Discord refuses the request itself
(400, 413). Everything else is retried with backoff until storage gives up after
``delivery_max_attempts``. Progress edits each running job's message with its percentage and
preview at most every 2 s.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import discord

from bot.channel_access import CANNOT_POST_CODES
from bot.render import job_content, pings
from bot.services import Services
from bot.uploads import UploadTooLarge, fit_upload
from bot.views import cancel_view, job_view
from storage.contract import Job, JobKind, JobStatus
from storage.errors import StorageError
from storage.logcontext import bind

log = logging.getLogger(__name__)

PROGRESS_EDIT_INTERVAL = 2.0
PROGRESS_POLL_INTERVAL = 0.5
DELIVERY_POLL_INTERVAL = 0.5
DELIVERY_CONCURRENCY = 10  # results being edited or posted at once
UNKNOWN_MESSAGE = 10008
# Statuses and error codes no retry can fix: the channel's (Unknown Channel, Missing Access,
# Missing Permissions) and Unknown Message.
TERMINAL_STATUSES = frozenset({400, 403, 404, 413})
TERMINAL_CODES = CANNOT_POST_CODES | {UNKNOWN_MESSAGE}
# Failures that are about the network or Discord, not a bug here: logged without a traceback.
_EXPECTED_FAILURES = (
    discord.HTTPException,
    aiohttp.ClientError,
    OSError,
    LookupError,
    StorageError,
)


class Undeliverable(Exception):
    """A result that can never be posted; retrying would not help."""


def is_terminal(exc: BaseException) -> bool:
    """Whether a failed delivery can never succeed, so it is given up at once."""
    if isinstance(exc, Undeliverable):
        return True
    if isinstance(exc, discord.HTTPException):
        return exc.status in TERMINAL_STATUSES or exc.code in TERMINAL_CODES
    return False


def describe(exc: BaseException) -> str:
    """The failure as recorded on the job: Discord's own line, or the exception type and text."""
    if isinstance(exc, discord.HTTPException | Undeliverable):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def preview_filename(data: bytes) -> str:
    """A file name whose extension matches the preview's image format."""
    if data.startswith(b"\x89PNG"):
        return "preview.png"
    if data.startswith(b"\xff\xd8"):
        return "preview.jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "preview.webp"
    return "preview.gif" if data.startswith(b"GIF8") else "preview.png"


def result_index(job: Job) -> int:
    """Which stored image a finished job shows: the grid (-1), or image 0 of an upscale."""
    return 0 if job.kind is JobKind.UPSCALE else -1


class Courier:
    """Runs the progress and delivery loops for one bot."""

    def __init__(self, client: discord.Client, services: Services) -> None:
        self._client = client
        self._services = services
        self._shown: dict[int, tuple[tuple[int, int], float]] = {}  # job -> (state, when)
        self._inflight: dict[int, asyncio.Task[None]] = {}

    # delivery -------------------------------------------------------------------------------

    async def delivery_loop(self) -> None:
        """Deliver finished jobs until cancelled."""
        wakeup = self._services.delivery_wakeup
        delivering: dict[int, asyncio.Task[bool]] = {}
        try:
            while True:
                wakeup.clear()
                backlog = await self._start_due(delivering)
                # With more due than free slots, the next free slot is a reason to look again.
                await self._wait_for_work(wakeup, set(delivering.values()) if backlog else set())
        finally:
            for task in delivering.values():
                task.cancel()
            await asyncio.gather(*delivering.values(), return_exceptions=True)

    async def _start_due(self, delivering: dict[int, asyncio.Task[bool]]) -> bool:
        """Start delivering due jobs in the free slots; True when more are due than fit."""
        room = DELIVERY_CONCURRENCY - len(delivering)
        if room <= 0:
            return True
        # The outbox read may predate the end of an attempt in flight now: skip those jobs.
        busy = set(delivering)
        try:
            due = await self._services.queue.pending_deliveries(
                limit=2 * DELIVERY_CONCURRENCY + len(delivering)
            )
        except Exception:
            log.exception("could not read the delivery outbox")
            return False
        messages = self._services.messages
        # A job whose message the command is still posting waits for that (it wakes us).
        waiting = [
            job
            for job in due
            if job.id not in busy and not (job.message_id is None and messages.is_posting(job.id))
        ]
        for job in waiting[:room]:
            task = asyncio.create_task(self.deliver(job))
            delivering[job.id] = task
            task.add_done_callback(functools.partial(_delivery_done, delivering, job.id))
        return len(waiting) > room

    async def _wait_for_work(self, wakeup: asyncio.Event, slots: set[asyncio.Task[bool]]) -> None:
        """Until storage signals a finished job, this process wakes us, a slot frees (when
        given), or the poll interval, which also brings jobs whose backoff ran out."""
        waiters = {
            asyncio.create_task(self._services.db.wait_for_delivery(DELIVERY_POLL_INTERVAL)),
            asyncio.create_task(wakeup.wait()),
        }
        try:
            await asyncio.wait(waiters | slots, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def deliver(self, job: Job) -> bool:
        """Put one finished job's result into its message; ``True`` when it is delivered.

        A failed attempt is recorded on the job: due again after a backoff, or given up.
        """
        services = self._services
        bind(job_id=job.id, user_id=job.user_id)  # this delivery runs in its own task
        messages = services.messages
        if job.message_id is None and messages.is_posting(job.id):
            return False
        async with messages.lock(job.id):
            if job.message_id is None:
                # The command may have stored the message id since the outbox was read.
                job = await services.queue.get(job.id)
                if job.message_id is None and messages.is_posting(job.id):
                    return False
            try:
                await self._publish(job)
            except Exception as exc:  # every failure is recorded on the job, none is dropped
                await self._record_failure(job, exc)
                return False
            await services.queue.mark_delivered(job.id)
            messages.finalize(job.id)
        self._count(str(job.status))
        return True

    async def _record_failure(self, job: Job, exc: Exception) -> None:
        terminal = is_terminal(exc)
        trace = None if isinstance(exc, (*_EXPECTED_FAILURES, Undeliverable)) else exc
        after = await self._services.queue.delivery_failed(job.id, describe(exc), final=terminal)
        if after.undeliverable_at is not None:
            self._services.messages.finalize(job.id)
            log.warning("job %s: result not delivered: %s", job.id, after.delivery_error)
            self._count("undeliverable" if terminal else "dead_letter")
            return
        log.warning(
            "job %s: delivery attempt %d failed (%s); next attempt at %s",
            job.id,
            after.delivery_attempts,
            after.delivery_error,
            after.next_delivery_at,
            exc_info=trace,
        )
        self._count("retry")

    async def _publish(self, job: Job) -> None:
        content = job_content(job, self._services.parser)
        try:
            files = await self._result_files(job)
        except UploadTooLarge as exc:
            # The images stay in the store; the user still learns the job finished.
            log.error("job %s: %s", job.id, exc)
            files, content = [], f"{content}\n(The result is too large to upload here.)"
        view = job_view(job, region=self._services.settings.region_editor)
        if job.channel_id is None:
            raise Undeliverable("it records no channel to deliver to")
        channel = self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        if job.message_id is not None:
            try:
                await channel.get_partial_message(job.message_id).edit(
                    content=content,
                    attachments=files,
                    view=view,
                    allowed_mentions=pings(job.user_id),
                )
                return
            except discord.NotFound as exc:
                if exc.code != UNKNOWN_MESSAGE:
                    raise  # the channel itself is gone
                log.info("job %s: its message was deleted; posting the result anew", job.id)
        kwargs: dict[str, Any] = {"files": files, "allowed_mentions": pings(job.user_id)}
        if view is not None:
            kwargs["view"] = view
        message = await channel.send(content, **kwargs)
        await self._services.queue.set_message_id(job.id, message.id)

    async def _result_files(self, job: Job) -> list[discord.File]:
        if job.status is not JobStatus.SUCCEEDED:
            return []
        records = {r.index: r for r in await self._services.queue.images(job.id)}
        record = records.get(result_index(job)) or records.get(0)
        if record is None:
            raise LookupError(f"job {job.id} succeeded but has no stored images")
        data = await self._services.images.get(record.sha256)
        limit = self._services.settings.upload_limit_bytes
        payload, name = await asyncio.to_thread(fit_upload, data, limit, f"imagine_{job.id}")
        return [discord.File(io.BytesIO(payload), filename=name)]

    def _count(self, outcome: str) -> None:
        if self._services.metrics is not None:
            self._services.metrics.deliveries.labels(outcome=outcome).inc()

    # progress -------------------------------------------------------------------------------

    async def progress_loop(self) -> None:
        """Edit running jobs' messages with progress and previews until cancelled."""
        try:
            while True:
                try:
                    running = await self._services.queue.running_jobs()
                except Exception:
                    log.exception("could not read running jobs")
                    running = []
                self._schedule_progress(running)
                await asyncio.sleep(PROGRESS_POLL_INTERVAL)
        finally:
            for task in self._inflight.values():
                task.cancel()

    def _schedule_progress(self, running: Sequence[Job]) -> None:
        now = time.monotonic()
        live = {job.id for job in running}
        for job_id in list(self._shown):
            if job_id not in live:
                del self._shown[job_id]
        for job in running:
            if job.message_id is None or job.channel_id is None:
                continue
            if self._services.messages.is_final(job.id) or job.id in self._inflight:
                continue
            state = (job.progress, hash(job.preview) if job.preview else 0)
            shown = self._shown.get(job.id)
            if shown is not None and (shown[0] == state or now - shown[1] < PROGRESS_EDIT_INTERVAL):
                continue
            task = asyncio.create_task(self._edit_progress(job, state))
            self._inflight[job.id] = task
            task.add_done_callback(self._forget_inflight)

    def _forget_inflight(self, task: asyncio.Task[None]) -> None:
        for job_id, inflight in list(self._inflight.items()):
            if inflight is task:
                del self._inflight[job_id]

    async def _edit_progress(self, job: Job, state: tuple[int, int]) -> None:
        messages = self._services.messages
        assert job.message_id is not None and job.channel_id is not None
        async with messages.lock(job.id):
            if messages.is_final(job.id):
                return
            channel = self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
            kwargs: dict[str, Any] = {
                "content": job_content(job, self._services.parser),
                "view": cancel_view(job.id),
                "allowed_mentions": pings(job.user_id),
            }
            if job.preview:
                kwargs["attachments"] = [
                    discord.File(io.BytesIO(job.preview), filename=preview_filename(job.preview))
                ]
            try:
                # discord.py waits out 429s itself; one edit in flight per message means a
                # rate-limited message simply gets fewer updates.
                await channel.get_partial_message(job.message_id).edit(**kwargs)
            except discord.HTTPException as exc:
                log.info("job %s: progress edit failed: %s", job.id, exc)
            self._shown[job.id] = (state, time.monotonic())


def _delivery_done(
    delivering: dict[int, asyncio.Task[bool]], job_id: int, task: asyncio.Task[bool]
) -> None:
    """Free the job's slot; an attempt that could not even be recorded is logged (the job stays
    due and is tried again)."""
    delivering.pop(job_id, None)
    if not task.cancelled() and task.exception() is not None:
        log.error("job %s: delivery error", job_id, exc_info=task.exception())
