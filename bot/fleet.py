"""``/admin workers`` text: each worker with what it serves, its current job and last seen.

``serves_text`` is also the dashboard's "serves" column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.render import WorkerView, clip, worker_states, workers_heading
from storage.contract import Job
from storage.routing import describe, serves


class FleetWorker(WorkerView, Protocol):
    """The fields of a worker row that /admin workers shows: /admin queue's, and what it serves."""

    @property
    def capabilities(self) -> Mapping[str, Any] | None: ...


def workers_content(
    workers: Sequence[FleetWorker], running: Sequence[Job], now: datetime, lease: timedelta
) -> str:
    """The /admin workers reply; a worker unseen for longer than ``lease`` is shown as gone."""
    if not workers:
        return "Workers: none has checked in."
    jobs: dict[str, list[int]] = {}
    for job in running:
        if job.lease_owner:
            jobs.setdefault(job.lease_owner, []).append(job.id)
    states = worker_states(workers, now, lease)
    lines = [workers_heading(states)]
    for worker, state in states:
        seen = f"<t:{int(worker.last_seen.timestamp())}:R>"
        held = jobs.get(worker.id)
        doing = ", job " + ", ".join(f"#{i}" for i in held) if held else ", idle"
        lines.append(f"- {worker.id} on {worker.host} ({state}{doing}), last seen {seen}")
        lines.append(f"  serves: {serves_text(worker)}")
    return clip("\n".join(lines))


def serves_text(worker: FleetWorker) -> str:
    """What a worker serves: its model, then the profiles, styles and ControlNets it registered
    (``sdxl; profile turbo, style ink-wash, ControlNet canny``)."""
    extras = [describe(token) for token in serves(worker.capabilities)]
    return worker.model + ("; " + ", ".join(extras) if extras else "")
