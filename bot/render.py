"""Message text for jobs, results, /info and admin replies: plain functions of plain data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.actions import is_enhance
from bot.prompt import ParserOptions
from bot.prompt import render as render_prompt
from storage.contract import Job, JobKind, JobStatus, UserSettings
from storage.edits import describe as describe_edit
from storage.routing import live

MAX_CONTENT = 2000
_SUMMARY_CHARS = 180
NOTES_CHARS = 160
_NOTES_WITH_REASONS_CHARS = 120
_NOTE_PARAMETER_CHARS = 20


# ``Type: message`` as Python prints an exception: never meant for the public message.
_RAW_EXCEPTION = re.compile(r"(?:[a-z_][a-z0-9_]*\.)*[A-Z][A-Za-z0-9_]*: ")


def failure_summary(error: str | None, job_id: int) -> str:
    """The public reason of a stored error: its first line, shortened.

    Workers put the reason meant for users on the first line and the details after it. A first
    line that reads like a raw exception (an error stored some other way) is not shown; the
    job id is the operator's reference to the stored error.
    """
    if not error or not error.strip():
        return "the worker gave no reason"
    line = next((ln.strip() for ln in error.strip().splitlines() if ln.strip()), "")
    if _RAW_EXCEPTION.match(line):
        return f"internal error (reference job {job_id})"
    if len(line) > _SUMMARY_CHARS:
        line = line[: _SUMMARY_CHARS - 1].rstrip() + "…"
    return line


def job_status(job: Job) -> str:
    """The parenthesised status at the end of a job message."""
    if job.status is JobStatus.QUEUED:
        return "Waiting to start"
    if job.status is JobStatus.RUNNING:
        return f"{max(0, min(100, job.progress))}%"
    if job.status is JobStatus.SUCCEEDED:
        return str(job.request.mode)
    if job.status is JobStatus.CANCELLED:
        return "Cancelled" + (", refunded" if job.cost else "")
    refund = f"; {job.cost} image{'s' if job.cost != 1 else ''} refunded" if job.cost else ""
    return f"Failed: {failure_summary(job.error, job.id)}{refund}"


def _strength_label(job: Job) -> str:
    strength = job.strength or 0.0
    if job.kind is JobKind.UPSCALE:
        return "Subtle" if strength < 0.3 else "Creative"
    return "Strong" if strength >= 0.7 else "Subtle"


def _title(job: Job, options: ParserOptions | None) -> str:
    return escape_markdown(render_prompt(job.request, options=options))


def job_content(job: Job, options: ParserOptions | None = None) -> str:
    """``**<prompt> <params>** - <@user> (<status>)``, labelled by kind."""
    user = f"<@{job.user_id}>"
    if is_enhance(job):
        who = f"Enhanced image #{(job.parent_index or 0) + 1} by {user}"
    elif job.kind is JobKind.VARIATION:
        who = f"Variations ({_strength_label(job)}) by {user}"
    elif job.kind is JobKind.UPSCALE:
        index = (job.parent_index or 0) + 1
        who = f"Upscaled ({_strength_label(job)}) image #{index} by {user}"
    elif job.edit is not None:
        who = f"{describe_edit(job.edit)} by {user}"
    else:
        who = user
    tail = f" - {who} ({job_status(job)})"
    line = notes_line(job.request.notes)
    content = _fit(_title(job, options), f"{tail}\n{line}" if line else tail)
    return with_english(content, job)


def notes_line(notes: Sequence[str]) -> str | None:
    """One short line for the parameters a prompt had that were not honoured as written.

    Each note is ``<parameter as typed>: <reason>``. The line lists them with their reasons,
    or, when that is too long, only the (shortened) parameters, ending in ``+N more``.
    """
    if not notes:
        return None
    pairs = [note.partition(": ")[::2] for note in notes]
    full = " · ".join(f"{parameter} ({reason})" for parameter, reason in pairs)
    if len(full) > _NOTES_WITH_REASONS_CHARS:
        shown: list[str] = []
        for index, (parameter, _) in enumerate(pairs):
            if len(parameter) > _NOTE_PARAMETER_CHARS:
                parameter = parameter[: _NOTE_PARAMETER_CHARS - 1].rstrip() + "…"
            more = len(pairs) - index - 1
            rest = f", +{more} more" if more else ""
            if len(", ".join([*shown, parameter]) + rest) > NOTES_CHARS:
                shown.append(f"+{len(pairs) - index} more")
                break
            shown.append(parameter)
        full = ", ".join(shown)
    return "-# " + escape_mentions(escape_markdown(f"Not as written: {full}"))


def with_english(content: str, job: Job) -> str:
    """``content`` plus the English a translated prompt was painted as, if it fits."""
    english = painted_english(job)
    if english is None:
        return content
    line = f"\nPainted in English: {escape_mentions(escape_markdown(english))}"
    room = MAX_CONTENT - len(content)
    if len(line) > room:
        line = line[: max(0, room - 1)].rstrip(chr(92)) + "…"
    return content + line if room > len("\nPainted in English: …") else content


def painted_english(job: Job) -> str | None:
    """The English a worker painted a translated prompt as (None when not translated)."""
    translation = (job.rendered or {}).get("translation")
    if not isinstance(translation, dict) or job.status is not JobStatus.SUCCEEDED:
        return None
    english = translation.get("prompt")
    return english if isinstance(english, str) and english.strip() else None


def painted_items(job: Job) -> list[tuple[str, str]]:
    """What a worker recorded painting ``job`` with (``jobs.rendered``), as (label, text) rows:
    profile, styles, ControlNet, reference, the English of a translated prompt, batching.

    Keys this does not know are listed as stored, so the record never hides anything.
    """
    rendered = dict(job.rendered or {})
    items: list[tuple[str, str]] = []
    if "profile" in rendered:
        items.append(("profile", str(rendered.pop("profile"))))
    loras = rendered.pop("loras", None)
    if loras:
        items.append(("styles", ", ".join(f"{name} at {_number(w)}" for name, w in loras)))
    control = rendered.pop("control", None)
    if isinstance(control, dict):
        kind, scale = control.get("kind"), _number(control.get("scale"))
        items.append(("ControlNet", f"{kind} at scale {scale}"))
    references = [rendered.pop("reference", None), *(rendered.pop("references", None) or ())]
    shown = [
        f"{reference.get('role')} reference at scale {_number(reference.get('scale'))}"
        for reference in references
        if isinstance(reference, dict)
    ]
    if shown:
        items.append(("IP-Adapter", ", ".join(shown)))
    translation = rendered.pop("translation", None)
    english = painted_english(job)
    if english is not None:
        items.append(("painted in English", english))
    if isinstance(translation, dict):
        segments = translation.get("segments") or []
        if len(segments) > 1:
            text = " · ".join(f"{text} (weight {_number(w)})" for text, w in segments)
            items.append(("English segments", text))
        negative = translation.get("negative_prompt")
        if negative and negative != job.request.negative_prompt:
            items.append(("--no in English", negative))
    batch = rendered.pop("batch", None)
    if isinstance(batch, dict):
        items.append(
            ("batched", f"{batch.get('images')} images of {batch.get('jobs')} jobs in one call")
        )
    items += [
        (key, value if isinstance(value, str) else json.dumps(value))
        for key, value in sorted(rendered.items())
    ]
    return items


def _number(value: object) -> str:
    """A stored weight or scale as written: 0.8, 1, 2.4."""
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def single_image_content(
    job: Job, index: int, clicker_id: int, options: ParserOptions | None = None
) -> str:
    """The message that shows one image of a grid (the U buttons)."""
    return _fit(_title(job, options), f" - Image #{index + 1} <@{clicker_id}>")


def pings(user_id: int) -> discord.AllowedMentions:
    """Mentions a job message may notify: its owner's only, whatever the prompt contains."""
    return discord.AllowedMentions(
        everyone=False, roles=False, replied_user=False, users=[discord.Object(id=user_id)]
    )


def _fit(title: str, tail: str) -> str:
    """Bold title plus tail, the title shortened so the message stays within Discord's limit."""
    full = f"**{title}**{tail}"
    if len(full) <= MAX_CONTENT:
        return full
    room = MAX_CONTENT - len(tail) - len("**…**")
    # A cut right after an escaping backslash would escape the closing asterisks.
    return f"**{title[:room].rstrip(chr(92))}…**{tail}"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return f"<t:{int(moment.timestamp())}:R>"


class QuotaView(Protocol):
    """The fields of a quota status that the bot shows."""

    @property
    def limit(self) -> int: ...
    @property
    def period(self) -> str: ...
    @property
    def used(self) -> int: ...
    @property
    def left(self) -> int: ...
    @property
    def running(self) -> int: ...
    @property
    def queued(self) -> int: ...
    @property
    def lifetime_images(self) -> int: ...
    @property
    def gpu_seconds(self) -> float: ...
    @property
    def resets_at(self) -> datetime | None: ...
    @property
    def relax_used(self) -> int: ...
    @property
    def relax_limit(self) -> int: ...


def quota_lines(status: QuotaView) -> list[str]:
    """Human lines for a quota status (limit, period, used, left, running, queued, lifetime)."""
    period_text = "in total" if str(status.period) == "total" else f"per {status.period}"
    lines = [
        f"Quota: {status.used} of {status.limit} images used {period_text}, {status.left} left"
    ]
    if status.resets_at is not None:
        lines.append(f"Resets {_when(status.resets_at)}")
    lines.append(f"Relax mode: {status.relax_used} of {status.relax_limit} images today")
    lines.append(f"Jobs: {status.running} running, {status.queued} queued")
    lines.append(f"Lifetime images: {status.lifetime_images}")
    lines.append(f"GPU time: {status.gpu_seconds:.1f} s")
    return lines


def info_content(
    status: QuotaView,
    jobs: Sequence[Job],
    positions: dict[int, int | None],
    waiting: Mapping[int, str] | None = None,
) -> str:
    """The /info reply: quota, then each running or queued job with its place in the queue
    (and why it waits, when no live worker serves it)."""
    lines = quota_lines(status)
    active = [j for j in jobs if j.status in (JobStatus.RUNNING, JobStatus.QUEUED)]
    if active:
        lines.append("")
        for job in active:
            prompt = escape_markdown(job.request.prompt)
            if len(prompt) > 60:
                prompt = prompt[:59] + "…"
            if job.status is JobStatus.RUNNING:
                where = f"running, {job.progress}%"
            else:
                position = positions.get(job.id)
                where = f"queued, position {position}" if position else "queued"
                if waiting and job.id in waiting:
                    where += f"; {waiting[job.id]}"
            lines.append(f"#{job.id} {prompt} ({where})")
    return "\n".join(lines)


def settings_content(settings: UserSettings) -> str:
    """The /settings reply: the user's current defaults."""
    return "\n".join(
        [
            "Your defaults (used where a prompt does not say otherwise):",
            f"Aspect ratio: {settings.aspect or '1:1'}",
            f"Variation strength: {settings.variation}",
            f"Stylize: {settings.stylize if settings.stylize is not None else 100}",
            f"Raw style: {'on' if settings.raw else 'off'}",
            f"Speed mode: {settings.mode}",
        ]
    )


class WorkerView(Protocol):
    """The fields of a worker row that /admin queue shows."""

    @property
    def id(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def last_seen(self) -> datetime: ...


_W = TypeVar("_W", bound=WorkerView)


def worker_states(workers: Iterable[_W], now: datetime, lease: timedelta) -> list[tuple[_W, str]]:
    """Each worker with "live" (seen within one ``lease`` of ``now``, as routing counts it) or
    "gone": the live ones first, each part by id."""
    states = [
        (w, "live" if live(w.last_seen, now, lease.total_seconds()) else "gone") for w in workers
    ]
    return sorted(states, key=lambda pair: (pair[1] == "gone", pair[0].id))


def workers_heading(states: Sequence[tuple[WorkerView, str]]) -> str:
    """``Workers: 2 live, 1 gone`` for ``worker_states``."""
    alive = sum(state == "live" for _, state in states)
    return f"Workers: {alive} live, {len(states) - alive} gone"


class QueueStatsView(Protocol):
    """The fields of queue statistics that /admin queue shows."""

    @property
    def queued(self) -> int: ...
    @property
    def running(self) -> int: ...
    @property
    def workers(self) -> Sequence[WorkerView]: ...


def queue_content(
    stats: QueueStatsView,
    running: Sequence[Job],
    now: datetime,
    lease: timedelta,
    waiting: Mapping[int, str] | None = None,
) -> str:
    """The /admin queue reply: depth, workers live or gone (unseen for longer than ``lease``)
    with last seen, running jobs, and the queued jobs that no live worker serves (``waiting``:
    job id -> why)."""
    lines = [f"Queue: {stats.queued} waiting, {stats.running} running"]
    if stats.workers:
        states = worker_states(stats.workers, now, lease)
        lines.append(workers_heading(states))
        lines += [
            f"- {w.id} on {w.host} ({state}, {w.model}), last seen {_when(w.last_seen)}"
            for w, state in states
        ]
    else:
        lines.append("Workers: none has checked in")
    if running:
        lines.append("Running:")
        for job in running:
            owner = job.lease_owner or "?"
            lines.append(f"- #{job.id} <@{job.user_id}> {job.progress}% on {owner}")
    if waiting:
        by_reason: dict[str, list[int]] = {}
        for job_id, reason in sorted(waiting.items()):
            by_reason.setdefault(reason, []).append(job_id)
        lines.append("Stuck:")
        for reason, ids in by_reason.items():
            shown = ", ".join(f"#{i}" for i in ids[:10]) + (" …" if len(ids) > 10 else "")
            lines.append(f"- {len(ids)} {reason} ({shown})")
    return clip("\n".join(lines))


def clip(text: str) -> str:
    """``text`` cut to one message's content limit, marked with "…" where it was cut."""
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"


def message_link(job: Job) -> str | None:
    """The Discord link to the job's message, or None when it has none."""
    if job.channel_id is None or job.message_id is None:
        return None
    guild = job.guild_id if job.guild_id is not None else "@me"
    return f"https://discord.com/channels/{guild}/{job.channel_id}/{job.message_id}"
