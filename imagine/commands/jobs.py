"""``imagine jobs list|show``: stored jobs, as lines or JSON (``--json``).

``list`` prints the newest jobs first (``--user``, ``--status``, ``--kind``, ``--limit``);
``show ID`` prints one job's whole record: prompt as typed and as rendered, parameters, seeds,
timings, worker, attempts, error, what painted it (``rendered``: profile, styles, ControlNet,
the English of a translated prompt), images, ledger rows, parent and children.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.prompt import ParserOptions
from bot.prompt import render as render_prompt
from bot.render import message_link, painted_items
from imagine.commands._schema import schema_is_current
from imagine.settings import Settings
from storage.contract import Job
from storage.db import Database
from storage.errors import StorageError
from storage.history import JobHistory, JobRecord


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def job_summary(job: Job, options: ParserOptions) -> dict[str, Any]:
    """The JSON object ``imagine jobs list`` prints for a job."""
    return {
        "id": job.id,
        "kind": str(job.kind),
        "status": str(job.status),
        "user_id": job.user_id,
        "prompt": render_prompt(job.request, options=options),
        "seed": job.seed,
        "cost": job.cost,
        "mode": str(job.request.mode),
        "model": job.request.model,
        "parent_job_id": job.parent_job_id,
        "parent_index": job.parent_index,
        "worker": job.lease_owner,
        "attempts": job.attempts,
        "gpu_seconds": job.gpu_seconds,
        "created_at": _time(job.created_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
        "message_url": message_link(job),
        "images_purged_at": _time(job.images_purged_at),
    }


def job_detail(record: JobRecord, options: ParserOptions) -> dict[str, Any]:
    """The JSON object ``imagine jobs show`` prints: the summary and the rest of the record."""
    job = record.job
    return {
        **job_summary(job, options),
        "prompt_text": job.prompt_text,
        "request": job.request.to_dict(),
        "strength": job.strength,
        "input_images": list(job.input_images),
        "style_images": list(job.style_images),
        "character_images": list(job.character_images),
        "max_attempts": job.max_attempts,
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        "delivered_at": _time(job.delivered_at),
        "guild_id": job.guild_id,
        "channel_id": job.channel_id,
        "message_id": job.message_id,
        "worker_host": record.worker.host if record.worker else None,
        "worker_model": record.worker.model if record.worker else None,
        "rendered": job.rendered,
        "images": [
            {
                "index": image.index,
                "sha256": image.sha256,
                "width": image.width,
                "height": image.height,
                "seed": image.seed,
                "size_bytes": image.size_bytes,
                "path": image.path,
            }
            for image in record.images
        ],
        "ledger": [
            {
                "id": entry.id,
                "kind": entry.kind,
                "amount": entry.amount,
                "period_at": _time(entry.period_at),
                "created_at": _time(entry.created_at),
                "note": entry.note,
                "refund_of": entry.refund_of,
            }
            for entry in record.ledger
        ],
        "children": [child.id for child in record.children],
    }


def _list_line(summary: dict[str, Any]) -> str:
    created = (summary["created_at"] or "")[:16].replace("T", " ")
    prompt = summary["prompt"]
    if len(prompt) > 70:
        prompt = prompt[:69] + "…"
    return (
        f"#{summary['id']:<6} {summary['status']:<9} {summary['kind']:<9} "
        f"{summary['user_id']:<20} {created:<16} {prompt}"
    )


def _show_lines(detail: dict[str, Any], painted: list[tuple[str, str]]) -> list[str]:
    skip = {"request", "rendered", "images", "ledger"}
    lines = [f"{key}: {value}" for key, value in detail.items() if key not in skip]
    lines.append("parameters: " + json.dumps(detail["request"], sort_keys=True))
    lines.append("painted with:")
    lines += [f"  {label}: {text}" for label, text in painted] or ["  (not recorded)"]
    lines.append("images:")
    lines += [
        f"  {i['index']:>2} {i['width']}x{i['height']} seed {i['seed']} {i['sha256']}"
        for i in detail["images"]
    ] or ["  (none)"]
    lines.append("ledger:")
    lines += [
        f"  {e['id']} {e['kind']} {e['amount']:+d} at {e['created_at']}"
        + (f" ({e['note']})" if e["note"] else "")
        for e in detail["ledger"]
    ] or ["  (none)"]
    return lines


def run(args: argparse.Namespace, settings: Settings) -> int:
    """List jobs or show one; exit 2 for a bad filter or an unknown job."""
    try:
        if not schema_is_current("jobs", settings):
            return 1
        output = asyncio.run(_read(args, settings))
    except StorageError as exc:
        print(f"imagine jobs: {exc}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, OSError) as exc:
        print(f"imagine jobs: cannot reach the database: {exc}", file=sys.stderr)
        return 1
    print(output)
    return 0


async def _read(args: argparse.Namespace, settings: Settings) -> str:
    options = ParserOptions.from_settings(settings)
    db = await Database.open(settings.database)
    try:
        history = JobHistory(db)
        if args.jobs_command == "show":
            record = await history.record(args.job_id)
            detail = job_detail(record, options)
            if args.json:
                return json.dumps(detail, indent=2)
            return "\n".join(_show_lines(detail, painted_items(record.job)))
        found = await history.find(
            user_id=args.user, status=args.status, kind=args.kind, limit=args.limit
        )
    finally:
        await db.close()
    summaries = [job_summary(job, options) for job in found]
    if args.json:
        return json.dumps(summaries, indent=2)
    if not summaries:
        return "no jobs"
    header = f"{'id':<7} {'status':<9} {'kind':<9} {'user':<20} {'created (UTC)':<16} prompt"
    return "\n".join([header, *(_list_line(s) for s in summaries)])
