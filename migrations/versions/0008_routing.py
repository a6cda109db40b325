"""Model-aware routing: ``jobs.needs``, what a worker must serve to paint the job.

A JSON array of tokens (``model:ALIAS``, ``profile:NAME``, ``lora:NAME``, ``control:KIND``)
stored on enqueue; the claim takes a job only for a worker that serves all of them. Jobs queued
before this revision have none (NULL) and go to any worker, as before.

Revision ID: 0008_routing
Revises: 0006_engine_capabilities
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_routing"
down_revision: str | None = "0007_edits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases: a SQLite table rebuild would drop the jobs triggers.
    op.add_column("jobs", sa.Column("needs", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "needs")
