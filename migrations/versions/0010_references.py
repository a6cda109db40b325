"""Style and character reference images of a job.

``jobs.reference_images`` holds the stored blobs of a request's ``--sref`` and ``--cref`` images
(``{"style": [sha256, ...], "character": [...]}``; NULL for jobs without references), so re-rolls,
variations and replays paint with the same references.

Revision ID: 0010_references
Revises: 0009_delivery_outbox
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_references"
down_revision: str | None = "0009_delivery_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("reference_images", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "reference_images")
