"""SQLAlchemy Core tables. The schema itself is created and changed only by ``migrations/``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite stores naive text, compared as strings)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: storage needs timezone-aware times")
        value = value.astimezone(UTC)
        # SQLite compares the stored text, so every value must be written in the same zone.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATUSES = ("succeeded", "failed", "cancelled")
JOB_KINDS = ("imagine", "variation", "upscale", "reroll", "outpaint", "inpaint")
LEDGER_KINDS = ("reserve", "refund", "grant", "reset")
PERIODS = ("day", "week", "month", "total")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("banned", Boolean, nullable=False, server_default=text("false")),
    Column("settings", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # How many of the user's jobs are running. Triggers on ``jobs`` (see migration 0002) keep it
    # equal to the count on every write, in the writer's transaction: a claim checks the user's
    # running cap against this one row, which it locks, so concurrent claims see each other.
    Column("running", Integer, nullable=False, server_default=text("0")),
    # When a job of the user last started running (the same triggers set it): between users
    # with as many turns taken, the claim serves the one served longest ago first.
    Column("last_claimed_at", UTCDateTime, nullable=True),
)

user_limits = Table(
    "user_limits",
    metadata,
    Column("user_id", BigInteger, ForeignKey("users.id"), primary_key=True),
    Column("images", Integer, nullable=True),
    Column("period", String(8), nullable=True),
    Column("max_concurrent", Integer, nullable=True),
    Column("max_queued", Integer, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    CheckConstraint("images IS NULL OR images >= 0", name="images"),
    CheckConstraint("period IS NULL OR " + _in("period", PERIODS), name="period"),
    CheckConstraint("max_concurrent IS NULL OR max_concurrent >= 1", name="max_concurrent"),
    CheckConstraint("max_queued IS NULL OR max_queued >= 1", name="max_queued"),
)

# One row (id 1) of admin overrides; NULL columns fall back to the process settings.
server_limits = Table(
    "server_limits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("images", Integer, nullable=True),
    Column("period", String(8), nullable=True),
    Column("max_concurrent", Integer, nullable=True),
    Column("max_queued", Integer, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("request", JSON, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("cost", Integer, nullable=False),
    Column("guild_id", BigInteger, nullable=True),
    Column("channel_id", BigInteger, nullable=True),
    Column("message_id", BigInteger, nullable=True),
    Column("interaction_id", BigInteger, nullable=True),
    Column("position", Integer, nullable=False, server_default=text("0")),
    Column("parent_job_id", Id, ForeignKey("jobs.id"), nullable=True),
    Column("parent_index", Integer, nullable=True),
    Column("strength", Float, nullable=True),
    Column("input_images", JSON, nullable=True),
    # Style and character reference blobs: ``{"style": [sha256...], "character": [...]}``.
    Column("reference_images", JSON, nullable=True),
    # Outpaint and inpaint jobs: source image, canvas geometry and mask (``contract.Edit``).
    Column("edit", JSON, nullable=True),
    Column("priority", Integer, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("progress", Integer, nullable=False, server_default=text("0")),
    Column("preview", LargeBinary, nullable=True),
    Column("error", Text, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
    Column("gpu_seconds", Float, nullable=True),
    # What painted the job beyond its request (profile, styles, translated text), from the worker.
    Column("rendered", JSON, nullable=True),
    # What a worker must serve to paint the job (``storage.routing.needs``): a JSON array.
    Column("needs", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    # The /imagine text as the user typed it (NULL for jobs made by buttons).
    Column("prompt_text", Text, nullable=True),
    # When retention removed the job's stored image files (the rows and Discord's copies stay).
    Column("images_purged_at", UTCDateTime, nullable=True),
    # The delivery outbox's bookkeeping (see storage.readers): failed attempts, when the next
    # one is due, the last error (or why delivery was given up) and when it was given up.
    Column("delivery_attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_delivery_at", UTCDateTime, nullable=True),
    Column("delivery_error", Text, nullable=True),
    Column("undeliverable_at", UTCDateTime, nullable=True),
    # The images of a relax job (its cost is 0): counted against the user's daily relax cap.
    Column("relax_images", Integer, nullable=False, server_default=text("0")),
    # NULL interaction ids are distinct, so jobs made without an interaction never collide.
    UniqueConstraint("interaction_id", "position"),
    CheckConstraint(_in("status", JOB_STATUSES), name="status"),
    CheckConstraint(_in("kind", JOB_KINDS), name="kind"),
    CheckConstraint("cost >= 0", name="cost"),
    Index("ix_jobs_user_status", "user_id", "status"),
    Index("ix_jobs_lease", "status", "lease_expires_at"),
    Index("ix_jobs_created_at", "created_at"),
    # The delivery outbox: only jobs still to deliver are in this index, so it stays small.
    Index(
        "ix_jobs_outbox",
        "finished_at",
        "id",
        sqlite_where=text("delivered_at IS NULL AND undeliverable_at IS NULL"),
        postgresql_where=text("delivered_at IS NULL AND undeliverable_at IS NULL"),
    ),
)

# Each user's relax jobs by time, for the daily relax cap at enqueue.
Index(
    "ix_jobs_relax",
    jobs.c.user_id,
    jobs.c.created_at,
    sqlite_where=text("relax_images > 0"),
    postgresql_where=text("relax_images > 0"),
)

# Each user's line in claim order (priority, then oldest); only queued jobs are in it.
Index(
    "ix_jobs_queued",
    jobs.c.user_id,
    jobs.c.priority.desc(),
    jobs.c.id,
    sqlite_where=text("status = 'queued'"),
    postgresql_where=text("status = 'queued'"),
)

images = Table(
    "images",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", Id, ForeignKey("jobs.id"), nullable=False),
    Column("index", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("path", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("job_id", "index"),
    Index("ix_images_sha256", "sha256"),
)

# Append-only. ``period_at`` is when the images count against a period: for a refund, the time
# of the reservation it returns, so a refund never leaks into a later period or past a reset.
ledger = Table(
    "ledger",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("users.id"), nullable=False),
    Column("job_id", Id, ForeignKey("jobs.id"), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("amount", Integer, nullable=False),
    Column("period_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("note", Text, nullable=True),
    # A refund points at the reservation it returns; unique, so nothing is refunded twice.
    Column("refund_of", Id, ForeignKey("ledger.id"), nullable=True, unique=True),
    CheckConstraint(_in("kind", LEDGER_KINDS), name="kind"),
    Index("ix_ledger_user_period", "user_id", "period_at"),
    Index("ix_ledger_job", "job_id"),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("model", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    # What the worker serves: profiles, LoRA styles, ControlNets... (gpu_worker capabilities).
    Column("capabilities", JSON, nullable=True),
)

banned_words = Table(
    "banned_words",
    metadata,
    Column("word", String(200), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# One row per signed web link that was used: a link's nonce may be redeemed once.
link_nonces = Table(
    "link_nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("purpose", String(32), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("used_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Dashboard sessions; the cookie holds the session id, the table only its SHA-256.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

# Append-only record of admin changes: who (Discord id, 0 for the operator), through what.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("admin_id", BigInteger, nullable=False),
    Column("via", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(200), nullable=True),
    Column("detail", JSON, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_audit_log_created_at", "created_at"),
)

# The public post of one grid image (a U button), so a repeat click links to it.
single_posts = Table(
    "single_posts",
    metadata,
    Column("job_id", Id, ForeignKey("jobs.id"), primary_key=True),
    Column("index", Integer, primary_key=True, autoincrement=False),
    Column("guild_id", BigInteger, nullable=True),
    Column("channel_id", BigInteger, nullable=False),
    Column("message_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
