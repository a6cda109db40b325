"""What workers serve and what painted a job: ``workers.capabilities`` and ``jobs.rendered``.

``workers.capabilities`` (JSON): the speed profiles, LoRA styles, ControlNets, IP-Adapter and
translation a worker offers, so the bot can check and list names without loading any model.
``jobs.rendered`` (JSON): what the worker painted the job with beyond the request (profile,
styles, the English text of a translated prompt), stored with its result.

Revision ID: 0006_engine_capabilities
Revises: 0003_single_posts
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_engine_capabilities"
down_revision: str | None = "0005_ops"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases: a SQLite table rebuild would drop the jobs triggers.
    op.add_column("workers", sa.Column("capabilities", sa.JSON(), nullable=True))
    op.add_column("jobs", sa.Column("rendered", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "rendered")
    op.drop_column("workers", "capabilities")
