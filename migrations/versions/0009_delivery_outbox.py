"""Delivery outbox with backoff, and the relax cap.

The delivery loop keeps its bookkeeping in the job row, so backoff survives restarts and the
outbox query reads only jobs that are due: ``delivery_attempts`` (failed attempts so far),
``next_delivery_at`` (not before; NULL for at once), ``delivery_error`` (the last failure, or
why delivery was given up) and ``undeliverable_at`` (when it was given up: a Discord error that
no retry can fix, or too many attempts). ``ix_jobs_outbox`` now leaves given-up jobs out.

``jobs.relax_images`` records the images of a relax job (which costs no quota), so admission can
cap each user's relax images per day; ``ix_jobs_relax`` keeps that sum to the user's relax jobs.

Revision ID: 0009_delivery_outbox
Revises: 0008_routing
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_delivery_outbox"
down_revision: str | None = "0008_routing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RELAX = sa.text("relax_images > 0")
OUTBOX_BEFORE = sa.text("delivered_at IS NULL")
OUTBOX = sa.text("delivered_at IS NULL AND undeliverable_at IS NULL")
COLUMNS = ("delivery_attempts", "next_delivery_at", "delivery_error", "undeliverable_at")


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("delivery_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("jobs", sa.Column("next_delivery_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("delivery_error", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("undeliverable_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index(
        "ix_jobs_outbox",
        table_name="jobs",
        sqlite_where=OUTBOX_BEFORE,
        postgresql_where=OUTBOX_BEFORE,
    )
    op.create_index(
        "ix_jobs_outbox",
        "jobs",
        ["finished_at", "id"],
        unique=False,
        sqlite_where=OUTBOX,
        postgresql_where=OUTBOX,
    )
    op.add_column(
        "jobs",
        sa.Column("relax_images", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_index(
        "ix_jobs_relax",
        "jobs",
        ["user_id", "created_at"],
        unique=False,
        sqlite_where=RELAX,
        postgresql_where=RELAX,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_relax", table_name="jobs", sqlite_where=RELAX, postgresql_where=RELAX)
    op.drop_index("ix_jobs_outbox", table_name="jobs", sqlite_where=OUTBOX, postgresql_where=OUTBOX)
    op.create_index(
        "ix_jobs_outbox",
        "jobs",
        ["finished_at", "id"],
        unique=False,
        sqlite_where=OUTBOX_BEFORE,
        postgresql_where=OUTBOX_BEFORE,
    )
    # Plain DROP COLUMN (SQLite 3.35+), not a batch copy, which would lose the jobs triggers.
    for column in ("relax_images", *COLUMNS):
        op.drop_column("jobs", column)
