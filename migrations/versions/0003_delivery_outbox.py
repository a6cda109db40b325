"""Relax cap: ``jobs.relax_images``, the images of a relax job (which costs no quota).

A relax job records how many images it makes, so admission can cap each user's relax images
per day; ``ix_jobs_relax`` keeps that sum to the user's relax jobs.

Revision ID: 0003_delivery_outbox
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_delivery_outbox"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RELAX = sa.text("relax_images > 0")


def upgrade() -> None:
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
    # Plain DROP COLUMN (SQLite 3.35+), not a batch copy, which would lose the jobs triggers.
    op.drop_column("jobs", "relax_images")
